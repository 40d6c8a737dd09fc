"""HTTP edge: parse, authenticate, call one service function, render Kling's envelope; no SQL."""
