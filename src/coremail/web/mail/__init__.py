"""The webmail at /coremail/: its pages, one module per area (reading,
organising, writing, settings), over services/ and the store's interface."""
