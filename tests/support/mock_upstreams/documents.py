"""Document and vision endpoints of the media mock: Mistral's OCR (`.../ocr`; one page
per entry of `pages`, else N for a URL naming "...-N-pages...", else 1 for an image and
2 for a document) and the gateway's segmentation format (`.../vision/segmentations`;
per input image, one mask per point, else per comma-separated prompt label)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from starlette.responses import JSONResponse, Response

from .behaviour import MockInvalid
from .media_forms import PIXEL_PNG, MediaRequest, field_bool, field_text

__all__ = ["ocr", "segmentations"]

_PAGES_IN_URL = re.compile(r"(\d+)-pages?\b")


# -- OCR (Mistral) -----------------------------------------------------------------------


def _location(value: Any, where: str) -> str:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not re.match(r"(https?://|data:)", url):
        raise MockInvalid(f"{where}: expected an http(s) URL or a data URI")
    return url


def _data_size(url: str) -> int | None:
    if not url.startswith("data:") or "," not in url:
        return None
    try:
        return len(base64.b64decode(url.split(",", 1)[1], validate=True))
    except (binascii.Error, ValueError) as exc:
        raise MockInvalid("document: the data URI is not valid base64") from exc


def ocr(media: MediaRequest, model: str, _base_url: str) -> Response:
    body = media.body
    document = body.get("document")
    if not isinstance(document, dict) or document.get("type") not in ("document_url", "image_url"):
        raise MockInvalid("document: expected {'type': 'document_url' | 'image_url', ...}")
    is_image = document["type"] == "image_url"
    url = _location(document.get(document["type"]), f"document.{document['type']}")
    requested = body.get("pages")
    if requested is not None and (
        not isinstance(requested, list)
        or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in requested)
    ):
        raise MockInvalid("pages: expected a list of page indexes (integers >= 0)")
    if requested:
        indexes = list(requested)
    else:
        named = _PAGES_IN_URL.search(url)
        indexes = list(range(int(named.group(1)) if named else 1 if is_image else 2))
    name = "inline document" if url.startswith("data:") else url.rsplit("/", 1)[-1].split("?")[0]
    with_images = field_bool(body, "include_image_base64")
    pages = []
    for index in indexes:
        images = (
            [
                {
                    "id": f"img-{index}.png",
                    "top_left_x": 100,
                    "top_left_y": 100,
                    "bottom_right_x": 400,
                    "bottom_right_y": 300,
                    "image_base64": "data:image/png;base64," + base64.b64encode(PIXEL_PNG).decode(),
                }
            ]
            if with_images
            else []
        )
        pages.append(
            {
                "index": index,
                "markdown": f"# Page {index + 1}\n\nmock OCR of {name}, page {index + 1}",
                "images": images,
                "dimensions": {"dpi": 200, "height": 2200, "width": 1700},
            }
        )
    answer: dict[str, Any] = {"pages": pages, "model": model, "document_annotation": None}
    if not model.startswith("no-usage"):
        answer["usage_info"] = {"pages_processed": len(pages), "doc_size_bytes": _data_size(url)}
    return JSONResponse(answer)


# -- segmentation (the gateway's own format) ---------------------------------------------


def segmentations(media: MediaRequest, model: str, _base_url: str) -> Response:
    body = media.body
    if ("image" in body) == ("images" in body):
        raise MockInvalid("give exactly one of 'image' and 'images'")
    inputs = [body["image"]] if "image" in body else body["images"]
    if not isinstance(inputs, list) or not inputs:
        raise MockInvalid("images: expected a non-empty list")
    for i, image in enumerate(inputs):
        if not isinstance(image, str) or not re.match(r"(https?://|data:image/)", image):
            raise MockInvalid(f"images[{i}]: expected an http(s) URL or an image data URI")
    prompt = field_text(body, "prompt") or ""
    points = body.get("points") or []
    labels = body.get("labels") or [1] * len(points)
    if not isinstance(points, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(c, int | float) for c in p) for p in points
    ):
        raise MockInvalid("points: expected a list of [x, y] pairs")
    if not isinstance(labels, list) or len(labels) != len(points):
        raise MockInvalid("labels: expected one label per point")
    if points:
        masks = [
            {
                "label": "foreground" if label else "background",
                "score": round(0.95 - 0.05 * k, 2),
                "bbox": [max(0, int(x) - 16), max(0, int(y) - 16), 32, 32],
            }
            for k, ((x, y), label) in enumerate(zip(points, labels, strict=True))
        ]
    else:
        names = [part.strip() for part in prompt.split(",") if part.strip()] or ["object"]
        masks = [
            {"label": name, "score": round(0.95 - 0.05 * k, 2), "bbox": [10 + 20 * k, 10, 64, 48]}
            for k, name in enumerate(names)
        ]
    data = [{"index": i, "masks": masks} for i in range(len(inputs))]
    return JSONResponse({"object": "list", "model": model, "data": data})
