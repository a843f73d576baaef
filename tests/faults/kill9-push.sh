#!/bin/bash
# kill -9 of the push worker on the source node at seeded random points
# of a real transfer (see tests/faults/kill9.sh); FAULT_SEED=N reproduces a run.
FAULT_KIND=push
. "$top_srcdir/tests/faults/kill9.sh"
