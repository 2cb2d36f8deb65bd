"""Learning from feedback: data snapshots, training runs, evaluation, the promotion gate
and the nightly chain, one module each."""
