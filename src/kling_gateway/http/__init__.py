"""The HTTP edge: parse, authenticate, call one service function, render Kling's envelope. No SQL here."""
