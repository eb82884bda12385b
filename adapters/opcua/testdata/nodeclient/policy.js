// Independent check of the server's secured policies with node-opcua.
//
// Usage: node policy.js <config.json>
//
// For each policy in the config it opens a SignAndEncrypt session with the
// trusted client certificate, reads a value, writes one and reads it back,
// and prints one line {"event":"result","policies":{...}} with what each
// policy did (or the error). Exits 1 on an unexpected failure.
"use strict";

const fs = require("fs");
const path = require("path");
const { OPCUAClient, MessageSecurityMode, SecurityPolicy, AttributeIds, DataType } = require("node-opcua-client");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const node = (addr) => `ns=${cfg.namespace};s=${addr}`;

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

setTimeout(() => {
    emit({ event: "error", message: "timed out after " + cfg.timeoutSeconds + " s" });
    process.exit(1);
}, cfg.timeoutSeconds * 1000).unref();

async function tryPolicy(name, value) {
    const certificateManager = new OPCUACertificateManager({
        rootFolder: path.join(cfg.pkiDir, name),
        automaticallyAcceptUnknownCertificate: true,
    });
    const client = OPCUAClient.create({
        applicationName: "tioga-policyclient",
        connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
        endpointMustExist: true,
        securityMode: MessageSecurityMode.SignAndEncrypt,
        securityPolicy: SecurityPolicy[name],
        clientCertificateManager: certificateManager,
        certificateFile: cfg.trusted.certFile,
        privateKeyFile: cfg.trusted.keyFile,
        applicationUri: cfg.trusted.uri,
        requestedSessionTimeout: 30000,
    });
    const out = {};
    try {
        await client.connect(cfg.endpoint);
        const session = await client.createSession();
        const st = await session.read({ nodeId: node("/P14/rideau/tioga/status"), attributeId: AttributeIds.Value });
        out.read = st.statusCode.name;
        const code = await session.write({
            nodeId: node("/P14/rideau/tioga/spot-level"),
            attributeId: AttributeIds.Value,
            value: { value: { dataType: DataType.Double, value } },
        });
        out.write = code.name;
        const back = await session.read({ nodeId: node("/P14/rideau/tioga/spot-level"), attributeId: AttributeIds.Value });
        out.readBack = back.value.value;
        await session.close();
    } catch (err) {
        out.error = String(err && err.message ? err.message : err);
    }
    try {
        await client.disconnect();
    } catch (err) {
        // already gone
    }
    return out;
}

async function main() {
    const result = { event: "result", policies: {} };
    let v = 5;
    for (const name of cfg.policies) {
        result.policies[name] = await tryPolicy(name, v++);
    }
    emit(result);
    process.exit(0);
}

main().catch((err) => {
    emit({ event: "error", message: String(err && err.stack ? err.stack : err) });
    process.exit(1);
});
