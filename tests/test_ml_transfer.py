"""The transfer verdict: a learnt method helps only where it beats the better reference in every repeat."""

from __future__ import annotations

import pytest

from bandflow.errors import BandflowError
from bandflow.ml.transfer import BASELINE, SOURCE_AS_IS, transfer_verdict, verdict_sentence


def _point(ip: list[float], ea: list[float], n_train: int = 20) -> dict:
    each = [{"ip": {"mae": i}, "ea": {"mae": e}} for i, e in zip(ip, ea, strict=True)]
    return {"fraction": 0.8, "n_train": n_train, "test_each": each,
            "test": {"ip": {"mae": sum(ip) / len(ip)}, "ea": {"mae": sum(ea) / len(ea)}}}


def _result(curves: dict[str, dict]) -> dict:
    early = {"fraction": 0.1, "n_train": 2, "test": {"ip": {"mae": 9.0}, "ea": {"mae": 9.0}}}
    return {"curves": [{"method": m, "points": [early, p]} for m, p in curves.items()]}


def test_verdict_is_paired_per_repeat_at_the_largest_share():
    result = _result({
        # better than either reference on average, but loses repeat 3 to the source model
        "L-SOAP fine-tuned": _point([0.5, 0.6, 1.3], [0.9, 0.9, 0.9]),
        "L-SOAP from scratch": _point([1.0, 1.0, 1.0], [0.8, 0.7, 0.6]),
        SOURCE_AS_IS: _point([1.0, 1.2, 0.7], [1.5, 1.5, 1.5], n_train=0),
        BASELINE: _point([0.9, 0.8, 1.4], [1.0, 1.2, 0.7], n_train=25),
    })
    verdict = transfer_verdict(result)
    ip, ea = verdict["ip"], verdict["ea"]
    assert ip["method"] == "L-SOAP fine-tuned" and ip["mae"] == pytest.approx(0.8)
    assert ip["reference"] == SOURCE_AS_IS and ip["reference_mae"] == pytest.approx(2.9 / 3)
    # per repeat the better reference is 0.9, 0.8, 0.7: won, won, lost
    assert (ip["wins"], ip["repeats"], ip["helps"]) == (2, 3, False)
    assert ip["gain"] == pytest.approx(((0.9 - 0.5) + (0.8 - 0.6) + (0.7 - 1.3)) / 3)
    assert ea["method"] == "L-SOAP from scratch" and (ea["wins"], ea["helps"]) == (3, True)
    assert ip["fraction"] == 0.8 and ip["n_train"] == 20
    sentence = verdict_sentence(verdict)
    assert sentence.startswith("At 80% of the pool (20 surfaces): IP: L-SOAP fine-tuned, the best learnt method "
                               "(0.80 eV against 0.97 eV for the best reference, source model, not fine-tuned)")
    assert "in 2 of 3 repeats (mean gain +0.00 eV): it does not help yet; EA" in sentence
    assert "EA: L-SOAP from scratch, the best learnt method (0.70 eV" in sentence
    assert sentence.endswith("(mean gain +0.27 eV): it helps.")
    assert "run more repeats" not in sentence


def test_verdict_shows_a_gain_that_rounds_to_zero_without_a_minus_sign():
    verdict = transfer_verdict(_result({
        "L-SOAP fine-tuned": _point([1.003, 0.9], [1.0, 1.0]),
        SOURCE_AS_IS: _point([1.0, 0.9], [1.2, 1.2], n_train=0),
        BASELINE: _point([1.5, 1.5], [1.5, 1.5], n_train=25),
    }))
    assert verdict["ip"]["gain"] == pytest.approx(-0.0015)
    assert "(mean gain +0.00 eV)" in verdict_sentence(verdict) and "-0.00" not in verdict_sentence(verdict)


def test_verdict_of_a_single_study_says_it_is_one_test_set():
    result = _result({"L-SOAP fine-tuned": {"fraction": 0.8, "n_train": 20,
                                            "test": {"ip": {"mae": 0.5}, "ea": {"mae": 2.0}}},
                      SOURCE_AS_IS: _point([1.0], [1.0], n_train=0), BASELINE: _point([0.9], [1.1])})
    verdict = transfer_verdict(result)  # an older metrics file: no test_each, the mean is the one repeat
    assert (verdict["ip"]["wins"], verdict["ip"]["repeats"], verdict["ip"]["helps"]) == (1, 1, True)
    assert (verdict["ea"]["wins"], verdict["ea"]["helps"]) == (0, False)
    assert "in 1 of 1 repeat " in verdict_sentence(verdict) and "run more repeats" in verdict_sentence(verdict)


def test_verdict_needs_both_references():
    result = _result({"L-SOAP fine-tuned": _point([0.5], [0.5]), BASELINE: _point([0.9], [1.1])})
    with pytest.raises(BandflowError, match="both reference curves"):
        transfer_verdict(result)


def test_verdict_of_mixed_or_unscored_repeats():
    method = _point([0.5, 0.7], [0.5, float("nan")])
    refs = {SOURCE_AS_IS: _point([1.0, 1.0], [1.0, 1.0], n_train=0), BASELINE: _point([0.9, 0.6], [1.1, 1.2])}
    verdict = transfer_verdict(_result({"L-SOAP fine-tuned": method, **refs}))
    assert (verdict["ip"]["wins"], verdict["ip"]["helps"]) == (1, False)  # 0.7 loses to the baseline's 0.6
    # a repeat without a score (NaN) is no win, and the mean gain is over the scored ones
    assert (verdict["ea"]["wins"], verdict["ea"]["repeats"], verdict["ea"]["helps"]) == (1, 2, False)
    assert verdict["ea"]["gain"] == pytest.approx(0.5)
    older = dict(refs, **{BASELINE: {k: v for k, v in refs[BASELINE].items() if k != "test_each"}})
    mixed = transfer_verdict(_result({"L-SOAP fine-tuned": method, **older}))  # one curve without repeats
    assert mixed["ip"]["repeats"] == 1 and mixed["ip"]["gain"] == pytest.approx(0.75 - 0.6)
