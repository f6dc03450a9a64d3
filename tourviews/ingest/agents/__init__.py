"""User-agent strings to a browser, an OS and a device class, bots included."""
