"""Wake-ups after commit: a broker between processes, a hub inside each one.

The database is the source of truth. A message only says "something changed
on this topic"; subscribers re-read what they need from the database.
"""
