"""The price-table check (pure): which models would be billed at zero."""

from __future__ import annotations

from switchyard_controlplane.price_check import PricedEntry, check_prices

NOW = 1_900_000_000_000


def _check(models: list[tuple[str, str, list[str]]], prices: list[PricedEntry]) -> dict[str, tuple]:  # type: ignore[type-arg]
    return {u.model: (u.missing_units, u.unpriced_targets) for u in check_prices(models, prices, now_ms=NOW)}


def test_fully_priced_public_model_is_fine() -> None:
    prices = [PricedEntry("chat", "input_token"), PricedEntry("chat", "output_token")]
    assert _check([("chat", "llm", ["up/m1"])], prices) == {}


def test_missing_unit_is_reported_with_the_targets_that_do_not_cover_it() -> None:
    prices = [PricedEntry("chat", "input_token"), PricedEntry("up/m1", "output_token")]
    found = _check([("chat", "llm", ["up/m1", "other/m2"])], prices)
    assert found == {"chat": (("output_token",), ("other/m2",))}


def test_target_prices_cover_a_model_without_its_own() -> None:
    prices = [PricedEntry(t, u) for t in ("up/m1", "other/m2") for u in ("input_token", "output_token")]
    assert _check([("chat", "llm", ["up/m1", "other/m2"])], prices) == {}


def test_request_price_covers_every_unit_and_capabilities_have_their_units() -> None:
    models = [
        ("flat", "llm", ["up/a"]),
        ("embed", "embedding", ["up/e"]),
        ("ocr", "ocr", ["up/o"]),
        ("tts", "tts", ["up/t"]),
        ("asr", "asr", ["up/s"]),
        ("img", "image", ["up/i"]),
    ]
    prices = [
        PricedEntry("flat", "request"),
        PricedEntry("embed", "input_token"),
        PricedEntry("img", "image"),
    ]
    assert _check(models, prices) == {
        "ocr": (("page",), ("up/o",)),
        "tts": (("character",), ("up/t",)),
        "asr": (("second",), ("up/s",)),
    }


def test_only_prices_already_in_effect_count() -> None:
    prices = [PricedEntry("embed", "input_token", NOW + 1)]
    assert _check([("embed", "embedding", ["up/e"])], prices) == {"embed": (("input_token",), ("up/e",))}
    prices = [PricedEntry("embed", "input_token", NOW)]
    assert _check([("embed", "embedding", ["up/e"])], prices) == {}


def test_message_names_model_units_and_targets() -> None:
    (found,) = check_prices([("chat", "llm", ["up/m1"])], [], now_ms=NOW)
    assert found.as_dict() == {
        "model": "chat",
        "capability": "llm",
        "missing_units": ["input_token", "output_token"],
        "unpriced_targets": ["up/m1"],
        "message": (
            "model 'chat' has no input_token, output_token price and neither do its targets up/m1: "
            "calls are billed at 0"
        ),
    }


def test_token_prices_price_image_and_asr_models_whose_answers_report_tokens() -> None:
    tokens = [PricedEntry(m, u) for m in ("img", "asr", "ocr") for u in ("input_token", "output_token")]
    found = _check([("img", "image", []), ("asr", "asr", []), ("ocr", "ocr", [])], tokens)
    assert found == {"ocr": (("page",), ())}  # OCR answers report pages only
