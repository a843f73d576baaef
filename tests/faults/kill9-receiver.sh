#!/bin/bash
# kill -9 of the FastCGI process receiving on the destination node at seeded random points
# of a real transfer (see tests/faults/kill9.sh); FAULT_SEED=N reproduces a run.
FAULT_KIND=receiver
. "$top_srcdir/tests/faults/kill9.sh"
