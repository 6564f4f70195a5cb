"""What the SQL backends share: the row layout of records, deduplicating enqueue, batched statements, deadlock
retries and lost connections, and the PostgreSQL ``LISTEN`` connection keeper. Imports no database library."""
