"""The intelligent score: a trainable statistical spam classifier.

`tokens` turns a raw message into the clues it is judged by, `classify` is
the Robinson/Fisher chi-square arithmetic, `model` reads and trains the
global and per-user token counts in the store, `check` is the message check
the filter engine runs (score bands BAYES_00 .. BAYES_999)."""
