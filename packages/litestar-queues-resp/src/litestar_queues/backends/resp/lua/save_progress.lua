-- Store the progress of running attempts under their fences. A: the updates as save_progress takes them. Reply:
-- nothing.
save_progress(A)
return reply(false)
