<?php
/*
 * tests/handlers/php/job.php: a job as PHP-FPM runs it for fcgiq's
 * fastcgi: handler, doing what the job's query string asks, after it has
 * written what it saw to RECORD_DIR (a FastCGI param of the queue) as
 * <FCGIQ_JOB_ID>.<FCGIQ_ATTEMPT>.json: $_SERVER, $_GET, $_POST and the
 * sha256 of php://input.
 *
 *   status=N        answer status N (Status: header), default 200
 *   until=K         answer `status` only while FCGIQ_ATTEMPT < K, then 200
 *   retry_after=V   a Retry-After: V header
 *   sleep_ms=N      sleep that long first (a slow answer)
 *   fatal=1         a PHP fatal error (500, message on FCGI_STDERR)
 *   type=T          the answer's Content-Type (default text/plain)
 *   size=N          an answer body of N bytes of 'x' (default: "ok <id>")
 *   exit=1          no output at all
 */
$input = file_get_contents('php://input');
$dir = $_SERVER['RECORD_DIR'] ?? '';
$id = $_SERVER['FCGIQ_JOB_ID'] ?? 'none';
$attempt = (int)($_SERVER['FCGIQ_ATTEMPT'] ?? 0);
if ($dir !== '') {
	$rec = [
		'server' => $_SERVER,
		'get' => $_GET,
		'post' => $_POST,
		'input_sha256' => hash('sha256', $input),
		'input_length' => strlen($input),
		'pid' => getmypid(),
	];
	$tmp = "$dir/.$id.$attempt.tmp";
	file_put_contents($tmp, json_encode($rec, JSON_UNESCAPED_SLASHES));
	rename($tmp, "$dir/$id.$attempt.json");
}
if (isset($_GET['sleep_ms']))
	usleep((int)$_GET['sleep_ms'] * 1000);
if (!empty($_GET['fatal']))
	nope_this_function_does_not_exist($id);
if (!empty($_GET['exit']))
	exit(0);
$status = (int)($_GET['status'] ?? 200);
if (isset($_GET['until']) && $attempt >= (int)$_GET['until'])
	$status = 200;
if ($status !== 200)
	header("Status: $status", true, $status);
if (isset($_GET['retry_after']) && $status !== 200)
	header('Retry-After: ' . $_GET['retry_after']);
header('Content-Type: ' . ($_GET['type'] ?? 'text/plain'));
if (isset($_GET['size']))
	echo str_repeat('x', (int)$_GET['size']);
else
	echo "ok $id $attempt\n";
