"""The L-SOAP attention network: IP and EA of oxide surfaces from the unrelaxed slab.

``neighbours`` (vesin neighbour lists, slab geometry) → ``descriptor`` (SOAP / L-SOAP) → ``data`` (cached
inputs, splits) → ``model`` (network, ensemble, safetensors files) → ``train`` / ``predict`` /
``importance`` / ``transfer``; ``workflow`` connects them to the results store. See docs/ml.md.
"""
