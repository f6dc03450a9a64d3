"""The beacon path: parse (``beacon``), strip identity (``privacy``), classify the
user-agent (``agents``), judge (``rules``), store (``store``); ``http`` is its face."""
