-- Delete up to A[2] terminal records finished before A[1]; reply how many.
return reply(sweep_finished(A[1], A[2]))
