"""Web analytics (seed 003): /collect, the tracking script and the statistics API."""
