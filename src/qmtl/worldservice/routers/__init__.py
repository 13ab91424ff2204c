"""HTTP routes of the WorldService: thin handlers that parse, call one service, return."""
