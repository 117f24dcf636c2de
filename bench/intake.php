<?php
// What a PHP user would write for durable intake: PDO SQLite in WAL with
// synchronous=FULL, a random id, 202 + Location, then fastcgi_finish_request().
$db = new PDO('sqlite:' . $_SERVER['BENCH_DB'], null, null,
    [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 5]);
$db->exec('PRAGMA journal_mode=WAL');
$db->exec('PRAGMA synchronous=FULL');
$body = file_get_contents('php://input');
$id = rtrim(strtr(base64_encode(random_bytes(16)), '+/', '-_'), '=');
$st = $db->prepare('INSERT INTO jobs (id, queue, body, created_at) VALUES (?, ?, ?, ?)');
$st->execute([$id, 'default', $body, (int)(microtime(true) * 1000)]);
header('Content-Type: application/json');
header('Location: /jobs/' . $id, true, 202);
echo json_encode(['id' => $id, 'queue' => 'default', 'state' => 'queued',
    'status_url' => '/jobs/' . $id]), "\n";
fastcgi_finish_request();
