"""Route modules; each handler calls exactly one service function."""
