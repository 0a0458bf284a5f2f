// Ordinary send flows of real JavaScript SES clients, run against a Sesame endpoint by
// tests/integration/test_clients.py: `node flows.mjs FLOW ENDPOINT ACCESS_KEY_ID`. Prints one JSON object of what the
// client returned; an SDK error is printed as {"error": name, "message": ...} with exit status 0, so the
// test can assert on it.
import { SESClient, GetSendQuotaCommand, SendEmailCommand, SendRawEmailCommand, VerifyEmailIdentityCommand } from "@aws-sdk/client-ses";
import * as v2 from "@aws-sdk/client-sesv2";
import nodemailer from "nodemailer";

const [flow, endpoint, accessKeyId] = process.argv.slice(2);
const config = {
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId, secretAccessKey: "secret" },  // dev mode: a 12-digit key id is that account
};
const FROM = "sender@js-clients.test";

async function sdkV1() {
  const ses = new SESClient(config);
  await ses.send(new VerifyEmailIdentityCommand({ EmailAddress: FROM }));
  const quota = await ses.send(new GetSendQuotaCommand({}));
  const simple = await ses.send(new SendEmailCommand({
    Source: `JS Sender <${FROM}>`,
    Destination: { ToAddresses: ["to@example.com"], CcAddresses: ["cc@example.com"] },
    Message: { Subject: { Data: "v1 simple" }, Body: { Text: { Data: "hello from client-ses" } } },
  }));
  const raw = await ses.send(new SendRawEmailCommand({
    RawMessage: {
      Data: new TextEncoder().encode(
        `From: ${FROM}\r\nTo: raw@example.com\r\nSubject: v1 raw\r\n\r\nraw body from client-ses\r\n`),
    },
  }));
  return { quota, simple: simple.MessageId, raw: raw.MessageId };
}

async function sdkV2() {
  const ses = new v2.SESv2Client(config);
  await ses.send(new v2.CreateEmailIdentityCommand({ EmailIdentity: "js-clients.test" }));
  const account = await ses.send(new v2.GetAccountCommand({}));
  const sent = await ses.send(new v2.SendEmailCommand({
    FromEmailAddress: FROM,
    Destination: { ToAddresses: ["to@example.com"], BccAddresses: ["bcc@example.com"] },
    Content: {
      Simple: {
        Subject: { Data: "v2 simple" },
        Body: { Text: { Data: "hello from client-sesv2" }, Html: { Data: "<p>hello</p>" } },
        Attachments: [{ FileName: "note.txt", RawContent: new TextEncoder().encode("attached"), ContentType: "text/plain" }],
      },
    },
  }));
  let rejected;
  try {
    await ses.send(new v2.SendEmailCommand({
      FromEmailAddress: "nobody@unverified.test",
      Destination: { ToAddresses: ["to@example.com"] },
      Content: { Simple: { Subject: { Data: "s" }, Body: { Text: { Data: "b" } } } },
    }));
  } catch (err) {
    rejected = { error: err.name, message: err.message };
  }
  return { sendQuota: account.SendQuota, sent: sent.MessageId, rejected };
}

async function nodemailerSes() {
  const sesClient = new v2.SESv2Client(config);
  await sesClient.send(new v2.CreateEmailIdentityCommand({ EmailIdentity: "js-clients.test" }));
  const transport = nodemailer.createTransport({ SES: { sesClient, SendEmailCommand: v2.SendEmailCommand } });
  // verify() sends From invalid@invalid and takes MessageRejected (unverified) as "configured right".
  const verified = await transport.verify();
  const info = await transport.sendMail({
    from: `Nodemailer <${FROM}>`,
    to: "one@example.com, Two <two@example.com>",
    cc: "three@example.com",
    subject: "nodemailer subject",
    text: "hello from nodemailer",
    attachments: [{ filename: "report.csv", content: "a,b\n1,2\n" }],
  });
  return { verified, messageId: info.messageId, response: info.response, envelope: info.envelope };
}

const flows = { "sdk-v1": sdkV1, "sdk-v2": sdkV2, nodemailer: nodemailerSes };
try {
  console.log(JSON.stringify(await flows[flow]()));
} catch (err) {
  console.log(JSON.stringify({ error: err.name, message: err.message }));
}
