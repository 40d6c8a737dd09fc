"""The Kling video task kinds beyond text2video, each a registry entry plus its validator."""
