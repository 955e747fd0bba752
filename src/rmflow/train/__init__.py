"""The shared training machinery: options, tokenisation, length-grouped batching and the loop."""
