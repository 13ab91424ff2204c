"""HTTP and WebSocket routes of the gateway (thin: parse, call one service, return)."""
