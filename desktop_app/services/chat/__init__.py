"""Chat: one turn from the composer to the stored reply, through LiteLLM and the dispatcher."""
