<?php
/* tests/handlers/php/trivial.php: the benchmark's job: read the body,
 * answer 200. */
$n = strlen(file_get_contents('php://input'));
echo "ok $n\n";
