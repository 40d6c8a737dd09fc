"""Orchestration: each public function is one use case, called by exactly one route or CLI
command."""
