"""One generator per verb (scan, import, classify, caption, train, export, evaluate): a typed
request in, progress out, a typed report back. The CLI and the GUI call these."""
