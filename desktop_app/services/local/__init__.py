"""Local models: Ollama hosts and pulls, llama-server processes and routers, GGUF files."""
