<?php
/*
 * bench/upstream.php: bench/upstream.sh's job, one trivial PHP script run
 * three ways (nginx -> PHP-FPM, fastcgi: -> PHP-FPM, exec: php-cli): read
 * the body, answer 200.  ?stamp=1 answers the time it started (µs since
 * the epoch) instead, for the enqueue-to-start measure.
 */
$t = microtime(true);
$in = PHP_SAPI === 'cli' ? file_get_contents('php://stdin') :
    file_get_contents('php://input');
if (($_GET['stamp'] ?? getenv('STAMP')) == '1')
	printf("%.0f\n", $t * 1e6);
else
	echo "ok ", strlen($in), "\n";
