"""The OpenAI SDK's audio calls through the gateway: transcription (json, verbose_json,
text, token usage), translation and speech (whole and streamed), also on an Azure
deployment; what each call is billed for."""

from __future__ import annotations

import io
import time
import wave

import openai
import pytest
from openai.types.audio import Transcription, TranscriptionVerbose, Translation
from openai.types.audio.transcription import UsageDuration, UsageTokens

from tests.contract.media.helpers import (
    SILENCE_SECONDS,
    SPOKEN,
    WAV_FILE,
    assert_billed,
    described,
)
from tests.support.media_stack import AZURE_API_VERSION, UPSTREAM_KEYS, wait_for_media_row
from tests.support.mock_upstreams.openai_media import SPEECH_CHUNK, speech_audio
from tests.support.sdk_stack import last_received
from tests.support.stack import SplitStack

pytestmark = pytest.mark.integration


# -- audio in ----------------------------------------------------------------------------


def test_transcription_json_is_billed_by_the_upstreams_seconds(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(
        model="asr-model", file=WAV_FILE, response_format="json", language="en", prompt="a quiet room"
    )
    assert isinstance(result, Transcription)
    assert result.text == "transcript of silence.wav (2.5 s) [prompt: a quiet room]"
    assert isinstance(result.usage, UsageDuration) and result.usage.seconds == 3  # OpenAI rounds up

    request = last_received(stack)
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["body"] == {
        "model": "whisper-1",
        "language": "en",
        "prompt": "a quiet room",
        "response_format": "json",
        "files": {"file": described(*WAV_FILE)},
    }
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["capability"] == "asr" and row["upstream_model"] == "whisper-1"
    assert row["audio_seconds"] == 3.0 and row["tokens_estimated"] is False
    assert row["input_tokens"] == 0 and row["output_tokens"] == 0
    assert_billed(row, "asr-model", second=3)


def test_transcription_verbose_json(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(
        model="asr-model", file=WAV_FILE, response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert isinstance(result, TranscriptionVerbose)
    assert result.duration == SILENCE_SECONDS and result.language == "english"
    assert result.segments is not None and result.segments[0].end == SILENCE_SECONDS
    assert result.words is not None and [w.word for w in result.words] == result.text.split()
    assert last_received(stack)["body"]["timestamp_granularities[]"] == "word"
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["audio_seconds"] == 3.0 and row["tokens_estimated"] is False  # usage.seconds first
    assert_billed(row, "asr-model", second=3)


def test_transcription_text_is_billed_by_the_measured_duration(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-model", file=WAV_FILE, response_format="text")
    assert isinstance(result, str) and result.strip() == "transcript of silence.wav (2.5 s)"
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is True
    assert_billed(row, "asr-model", second=SILENCE_SECONDS)


def test_transcription_without_usage_is_measured_by_the_gateway(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-nousage", file=WAV_FILE)
    assert isinstance(result, Transcription) and result.usage is None
    assert last_received(stack)["body"]["model"] == "no-usage-whisper"
    row = wait_for_media_row(stack, "asr-nousage", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is True
    assert_billed(row, "asr-nousage", second=SILENCE_SECONDS)


def test_verbose_transcription_without_usage_is_billed_by_its_duration(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(
        model="asr-nousage", file=WAV_FILE, response_format="verbose_json"
    )
    assert isinstance(result, TranscriptionVerbose) and result.usage is None
    row = wait_for_media_row(stack, "asr-nousage", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is False
    assert_billed(row, "asr-nousage", second=SILENCE_SECONDS)


def test_token_billed_transcription(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-tokens", file=WAV_FILE, prompt="two words")
    assert isinstance(result, Transcription) and isinstance(result.usage, UsageTokens)
    usage = result.usage
    assert usage.input_token_details is not None
    assert usage.input_token_details.audio_tokens == 25 and usage.input_token_details.text_tokens == 2
    assert usage.input_tokens == 27 and usage.output_tokens == len(result.text.split())
    assert last_received(stack)["body"]["model"] == "gpt-4o-transcribe"

    row = wait_for_media_row(stack, "asr-tokens", since)
    assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is False
    assert_billed(row, "asr-tokens", input_token=usage.input_tokens, output_token=usage.output_tokens)


def test_translation(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.translations.create(model="asr-model", file=WAV_FILE)
    assert isinstance(result, Translation) and result.text == "translation of silence.wav (2.5 s)"
    request = last_received(stack)
    assert request["path"] == "/v1/audio/translations"
    assert request["body"] == {"model": "whisper-1", "files": {"file": described(*WAV_FILE)}}
    # OpenAI's translations report no usage: the gateway measures the upload.
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is True
    assert_billed(row, "asr-model", second=SILENCE_SECONDS)


# -- audio out ---------------------------------------------------------------------------


def test_speech(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    audio = client.audio.speech.create(model="tts-model", voice="alloy", input=SPOKEN, response_format="wav")
    expected = speech_audio(SPOKEN, "wav")
    assert audio.content == expected
    assert audio.response.headers["content-type"].startswith("audio/wav")
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert wav.getnframes() == int(24_000 * 0.05) * len(SPOKEN)
    assert last_received(stack)["body"] == {
        "model": "tts-1",
        "voice": "alloy",
        "input": SPOKEN,
        "response_format": "wav",
    }
    row = wait_for_media_row(stack, "tts-model", since)
    assert row["capability"] == "tts" and row["characters"] == len(SPOKEN) == 40
    assert_billed(row, "tts-model", character=len(SPOKEN))


def test_speech_streamed_chunk_by_chunk(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    expected = speech_audio(SPOKEN, "mp3")
    assert len(expected) > 2 * SPEECH_CHUNK  # the mock sends it in several chunks
    with client.audio.speech.with_streaming_response.create(
        model="tts-model", voice="alloy", input=SPOKEN
    ) as response:
        assert response.headers["content-type"].startswith("audio/mpeg")
        chunks = list(response.iter_bytes())
    assert b"".join(chunks) == expected
    row = wait_for_media_row(stack, "tts-model", since)
    assert row["characters"] == len(SPOKEN)
    assert_billed(row, "tts-model", character=len(SPOKEN))


def test_azure_transcription_goes_to_the_deployment(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-az", file=WAV_FILE)
    assert isinstance(result, Transcription) and isinstance(result.usage, UsageDuration)
    request = last_received(stack)
    assert request["path"] == "/openai/deployments/whisper-deployment/audio/transcriptions"
    assert request["query"] == {"api-version": AZURE_API_VERSION}
    assert request["headers"]["api-key"] == UPSTREAM_KEYS["az"]
    assert request["body"]["model"] == "whisper-deployment"
    assert request["body"]["files"] == {"file": described(*WAV_FILE)}
    row = wait_for_media_row(stack, "asr-az", since)
    assert row["provider"] == "az" and row["audio_seconds"] == 3.0
    assert_billed(row, "asr-az", second=3)
