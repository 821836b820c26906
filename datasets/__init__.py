"""fer-sfda-bench data layer: canonical labels, raw-release parsers, the synthetic benchmark, the cache.

This package is called ``datasets``, like Hugging Face's library. ``FERBENCH_DATASETS`` marks it as
ours; ``benchmark`` checks the marker at import and explains the clash if another ``datasets`` wins.
"""

FERBENCH_DATASETS = True
