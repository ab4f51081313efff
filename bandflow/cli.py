"""The ``bandflow`` command: parses arguments, calls the library modules, prints results."""

from __future__ import annotations

import json
import sys

import typer

from bandflow.errors import BandflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="Band alignment of nonpolar oxide surfaces.")
bulk_app = typer.Typer(no_args_is_help=True, help="The bulk oxide library.")
app.add_typer(bulk_app, name="bulk")


def _print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@bulk_app.command("list")
def bulk_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """Show the library: name, formula, space group, atoms per primitive cell."""
    from bandflow.bulk import library_names, load_bulk

    rows = []
    for name in library_names():
        bulk = load_bulk(name)
        symbol, number = bulk.spacegroup()
        rows.append(
            {"name": name, "formula": bulk.formula, "spacegroup": symbol, "spacegroup_number": number,
             "n_atoms_primitive": len(bulk.primitive())}
        )
    if as_json:
        _print_json(rows)
        return
    typer.echo(f"{'name':<14}{'formula':<10}{'space group':<14}{'atoms/prim.':>11}")
    for r in rows:
        typer.echo(f"{r['name']:<14}{r['formula']:<10}{r['spacegroup'] + ' (' + str(r['spacegroup_number']) + ')':<14}"
                   f"{r['n_atoms_primitive']:>11}")


def main() -> None:
    """Entry point: bad input or environment gives one line on stderr and exit code 2."""
    try:
        app()
    except BandflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
