"""Media calls (images, audio, OCR, segmentation): reading the caller's request,
measuring what it will be billed for, and reading the units out of the answer. The
route handler is media_routes.py."""
