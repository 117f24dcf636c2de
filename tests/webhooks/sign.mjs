// tests/webhooks/sign.mjs: sign a body the way each webhook sender does,
// with the sender's own library (never code of ours), and print the
// headers as curl -H arguments, one a line.
//
//   node sign.mjs github SECRET BODYFILE
//   node sign.mjs stripe SECRET BODYFILE [UNIX_TIME]
//   node sign.mjs standard-webhooks SECRET BODYFILE MSG_ID [UNIX_TIME]
//
// The body is read as bytes and handed over as the UTF-8 string the
// libraries take; the test posts the same file.
import { readFileSync } from "node:fs";
import { sign } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";
import Stripe from "stripe";

const [scheme, secret, file, a4, a5] = process.argv.slice(2);
const body = readFileSync(file, "utf8");
const now = Math.floor(Date.now() / 1000);

switch (scheme) {
case "github":
	console.log(`X-Hub-Signature-256: ${await sign(secret, body)}`);
	break;
case "stripe": {
	// A made-up API key: generateTestHeaderString computes locally.
	const stripe = new Stripe("sk_test_fcgiq");
	const header = stripe.webhooks.generateTestHeaderString({
		payload: body,
		secret,
		timestamp: a4 !== undefined ? Number(a4) : now,
	});
	console.log(`Stripe-Signature: ${header}`);
	break;
}
case "standard-webhooks": {
	const t = a5 !== undefined ? Number(a5) : now;
	const wh = new Webhook(secret);
	console.log(`webhook-id: ${a4}`);
	console.log(`webhook-timestamp: ${t}`);
	console.log(`webhook-signature: ${wh.sign(a4, new Date(t * 1000), body)}`);
	break;
}
default:
	console.error(`sign.mjs: unknown scheme ${scheme}`);
	process.exit(2);
}
