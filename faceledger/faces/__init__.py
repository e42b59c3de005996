"""Face pipeline: image bytes in, FaceRecord(s) out."""
