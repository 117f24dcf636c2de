#!/bin/sh
# cat.sh: the body back as the result.
exec cat
