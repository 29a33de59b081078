import re

import pytest
from pydantic import ValidationError

from shared.core.config import PROJECT_ROOT, Settings


def test_env_example_lists_every_setting() -> None:
    text = (PROJECT_ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_original_environment_names_keep_their_meaning(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box:11434")
    monkeypatch.setenv("OLLAMA_MODEL", "llama3")
    monkeypatch.setenv("API_PREFIX", "/support")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.ollama_host, settings.ollama_model, settings.api_prefix) == (
        "http://gpu-box:11434", "llama3", "/support"
    )  # fmt: skip


def test_the_shops_country_is_an_iso_code() -> None:
    assert Settings(_env_file=None, shop_country="de").shop_country == "DE"  # type: ignore[call-arg]
    assert Settings(_env_file=None, shop_country="").shop_country == ""  # type: ignore[call-arg]
    for wrong in ("Germany", "XX"):
        with pytest.raises(ValidationError, match=r"SHOP_COUNTRY|pattern"):
            Settings(_env_file=None, shop_country=wrong)  # type: ignore[call-arg]
