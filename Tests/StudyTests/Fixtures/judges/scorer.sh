#!/bin/sh
# Test scorer: score = -(number of occurrences of "bomb") + 0.5, one {"score"} per input line.
exec awk '{ n = gsub(/bomb/, "&"); printf "{\"score\": %g}\n", 0.5 - n }'
