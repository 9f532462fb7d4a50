// The step lines the Node scripts print for tests/wamp2/test_node_client.py: one JSON object a line.
'use strict';

function say(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

function fail(error) {
  say('error', { error: String(error && error.stack ? error.stack : JSON.stringify(error)) });
  process.exit(1);
}

// One autobahn-js connection without retries, on the serializer the test named.
function connection(autobahn, url, realm, serializerName) {
  const serializer = serializerName === 'msgpack'
    ? new autobahn.serializer.MsgpackSerializer()
    : new autobahn.serializer.JSONSerializer();
  return new autobahn.Connection({
    transports: [{ type: 'websocket', url, serializers: [serializer] }],
    realm,
    max_retries: 0,
    retry_if_unreachable: false,
  });
}

module.exports = { say, fail, connection };
