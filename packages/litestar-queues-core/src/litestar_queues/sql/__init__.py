"""What the SQL backends share: the row layout of records, deduplicating enqueue, batched statements, deadlock
retries, and the PostgreSQL ``LISTEN`` connection keeper. Imports no database library."""
