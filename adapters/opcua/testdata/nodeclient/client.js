// Independent OPC UA client for the Go tests of adapters/opcua.
//
// Usage: node client.js <config.json>
//
// The config names the endpoint, the namespace index, the PKI folder and
// the trusted and untrusted client certificates. The script prints one JSON
// line {"event":"subscribed"} when its frame-count subscription is in
// place (the Go test then plays a series), and a final line
// {"event":"result", ...} with everything it saw, which the Go test
// asserts. Any failure prints {"event":"error","message":...} and exits 1.
"use strict";

const fs = require("fs");
const path = require("path");
const {
    OPCUAClient,
    MessageSecurityMode,
    SecurityPolicy,
    AttributeIds,
    DataType,
    TimestampsToReturn,
    ClientSubscription,
    ClientMonitoredItem,
    BrowseDirection,
    StatusCodes,
} = require("node-opcua-client");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const ns = cfg.namespace;
const node = (addr) => `ns=${ns};s=${addr}`;

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(err) {
    emit({ event: "error", message: String(err && err.stack ? err.stack : err) });
    process.exit(1);
}

// Keep the whole run bounded even if the server stops answering.
setTimeout(() => fail("timed out after " + cfg.timeoutSeconds + " s"), cfg.timeoutSeconds * 1000).unref();

async function connect(mode, identity) {
    const certificateManager = new OPCUACertificateManager({
        rootFolder: path.join(cfg.pkiDir, identity ? identity.name : "anonymous"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const options = {
        applicationName: "tioga-nodeclient",
        connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
        endpointMustExist: false,
        securityMode: mode,
        securityPolicy: mode === MessageSecurityMode.None ? SecurityPolicy.None : SecurityPolicy.Basic256Sha256,
        clientCertificateManager: certificateManager,
        requestedSessionTimeout: 30000,
    };
    if (identity) {
        options.certificateFile = identity.certFile;
        options.privateKeyFile = identity.keyFile;
        options.applicationUri = identity.uri;
    }
    const client = OPCUAClient.create(options);
    await client.connect(cfg.endpoint);
    const session = await client.createSession();
    return { client, session };
}

async function close({ client, session }) {
    await session.close();
    await client.disconnect();
}

async function browseNames(session, nodeId) {
    const res = await session.browse({
        nodeId,
        browseDirection: BrowseDirection.Forward,
        referenceTypeId: "HierarchicalReferences",
        includeSubtypes: true,
        resultMask: 0x3f,
    });
    if (res.statusCode.value !== StatusCodes.Good.value) {
        throw new Error(`browse ${nodeId}: ${res.statusCode.toString()}`);
    }
    return res.references.map((r) => ({
        name: r.browseName.name,
        nodeId: r.nodeId.toString(),
        nodeClass: r.nodeClass,
    }));
}

async function writeValue(session, nodeId, dataType, value) {
    const code = await session.write({
        nodeId,
        attributeId: AttributeIds.Value,
        value: { value: { dataType, value } },
    });
    return code.name;
}

async function call(session, objectId, methodId, dataType, value) {
    const res = await session.call({ objectId, methodId, inputArguments: [{ dataType, value }] });
    return res;
}

async function main() {
    const result = { event: "result" };

    // 1. Anonymous (None): browse, read, subscribe, be refused a write.
    const anon = await connect(MessageSecurityMode.None, null);
    const objects = await browseNames(anon.session, "ns=0;i=85");
    const rideau = objects.find((r) => r.name === "rideau");
    if (!rideau) throw new Error("no rideau under Objects: " + JSON.stringify(objects));
    const devices = await browseNames(anon.session, rideau.nodeId);
    result.rideauNodeId = rideau.nodeId;
    result.devices = devices.map((d) => d.name);
    const props = await browseNames(anon.session, devices[0].nodeId);
    result.properties = props.map((p) => p.name);
    result.methods = props.filter((p) => p.nodeClass === 4).map((p) => p.name);

    const reads = await anon.session.read([
        { nodeId: node("/P14/rideau/tioga/frame-count"), attributeId: AttributeIds.Value },
        { nodeId: node("/P14/rideau/tioga/status"), attributeId: AttributeIds.Value },
        { nodeId: node("/P14/rideau/tioga/dozor-pass"), attributeId: AttributeIds.Value },
        { nodeId: node("/P14/rideau/tioga/dozor-pass"), attributeId: AttributeIds.ValueRank },
        { nodeId: node("/P14/rideau/tioga/dozor-pass"), attributeId: AttributeIds.ArrayDimensions },
        { nodeId: node("/P14/rideau/tioga/spot-level"), attributeId: AttributeIds.UserAccessLevel },
    ]);
    for (const r of reads) {
        if (r.statusCode.value !== StatusCodes.Good.value) throw new Error("read: " + r.statusCode.toString());
    }
    result.frameCount = reads[0].value.value;
    result.frameCountSourceTimestamp = reads[0].sourceTimestamp ? reads[0].sourceTimestamp.toISOString() : null;
    result.status = reads[1].value.value;
    result.dozorPassDimensions = reads[2].value.dimensions;
    result.dozorPass = Array.from(reads[2].value.value);
    result.dozorPassValueRank = reads[3].value.value;
    result.dozorPassArrayDimensions = Array.from(reads[4].value.value);
    result.anonymousUserAccessLevel = reads[5].value.value;
    result.anonymousWrite = await writeValue(anon.session, node("/P14/rideau/tioga/spot-level"), DataType.Double, 5.5);
    const anonCall = await call(anon.session, node("/P14/rideau/tioga"), node("/P14/rideau/tioga/reset"), DataType.Int32, 0);
    result.anonymousCall = anonCall.statusCode.name;

    const subscription = ClientSubscription.create(anon.session, {
        requestedPublishingInterval: 20,
        requestedLifetimeCount: 600,
        requestedMaxKeepAliveCount: 10,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 1,
    });
    const frameCounts = [];
    const done = new Promise((resolve) => {
        const item = ClientMonitoredItem.create(
            subscription,
            { nodeId: node("/P14/rideau/tioga/frame-count"), attributeId: AttributeIds.Value },
            { samplingInterval: 0, discardOldest: true, queueSize: 100 },
            TimestampsToReturn.Both
        );
        item.on("changed", (dv) => {
            frameCounts.push(dv.value.value);
            if (dv.value.value === cfg.frames) resolve();
        });
        item.on("initialized", () => emit({ event: "subscribed" }));
        item.on("err", (msg) => fail("monitored item: " + msg));
    });
    await done;
    result.frameCounts = frameCounts;
    await subscription.terminate();
    await close(anon);

    // 2. Untrusted certificate over SignAndEncrypt: still read-only.
    const untrusted = await connect(MessageSecurityMode.SignAndEncrypt, cfg.untrusted);
    result.untrustedWrite = await writeValue(untrusted.session, node("/P14/rideau/tioga/spot-level"), DataType.Double, 5.5);
    await close(untrusted);

    // 3. Trusted certificate over SignAndEncrypt: write, read back, call.
    const trusted = await connect(MessageSecurityMode.SignAndEncrypt, cfg.trusted);
    result.trustedWrite = await writeValue(trusted.session, node("/P14/rideau/tioga/spot-level"), DataType.Double, 7.25);
    const back = await trusted.session.read({ nodeId: node("/P14/rideau/tioga/spot-level"), attributeId: AttributeIds.Value });
    result.spotLevelReadBack = back.value.value;
    result.outOfRangeWrite = await writeValue(trusted.session, node("/P14/rideau/tioga/spot-level"), DataType.Double, 99);
    result.readOnlyWrite = await writeValue(trusted.session, node("/P14/rideau/tioga/frame-count"), DataType.Int32, 3);
    result.typeMismatchWrite = await writeValue(trusted.session, node("/P14/rideau/tioga/spot-level"), DataType.String, "7");
    const reset = await call(trusted.session, node("/P14/rideau/tioga"), node("/P14/rideau/tioga/reset"), DataType.Int32, 2);
    result.trustedCall = reset.statusCode.name;
    const spots = await call(trusted.session, node("/P14/rideau/tioga"), node("/P14/rideau/tioga/spot-list"), DataType.Int32, 5);
    result.queryCall = spots.statusCode.name;
    result.queryDimensions = spots.outputArguments[0].dimensions;
    result.queryValues = Array.from(spots.outputArguments[0].value);
    await close(trusted);

    emit(result);
}

main().then(
    () => process.exit(0),
    (err) => fail(err)
);
