"""Wake-ups after commit and live delivery.

The database is the source of truth. A message only says "something changed
on this topic"; subscribers re-read what they need from the database.

broker  between processes (memory://, redis://)   hub  inside each process
topics  topic names                                feed  one reader per watched request
direct  the feed writing events to caught-up subscribers itself
"""
