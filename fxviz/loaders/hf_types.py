"""The Hugging Face model types transformers knows (`hf:llama`), read without importing torch:
for `fxviz list --hf` and shell completion."""

from __future__ import annotations


def model_types() -> list[str]:
    from transformers.models.auto.configuration_auto import (  # type: ignore[attr-defined]
        CONFIG_MAPPING_NAMES,
    )

    return sorted(CONFIG_MAPPING_NAMES)
