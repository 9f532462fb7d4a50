// Drives autobahn-js (npm `autobahn`, WAMP v2) against our server, one step per stdin line.
// Usage: node --experimental-websocket autobahn_node.js ws://127.0.0.1:PORT/ realm1 json|msgpack
// Prints one JSON line per step; the test pushes from Python between "subscribed" and "event".
'use strict';

const path = require('path');
const autobahn = require(path.join(__dirname, '..', 'interop', 'node_modules', 'autobahn'));
const { say, fail } = require('./node_steps.js');

const [url, realm, serializerName] = process.argv.slice(2);
const CHANNEL = 'acme/channel/lobby';
const serializer = serializerName === 'msgpack'
  ? new autobahn.serializer.MsgpackSerializer()
  : new autobahn.serializer.JSONSerializer();
const deadline = setTimeout(() => fail('timeout'), 15000);


function errorInfo(err) {
  return { error: err.error, args: err.args, kwargs: err.kwargs };
}

const connection = new autobahn.Connection({
  transports: [{ type: 'websocket', url, serializers: [serializer] }],
  realm,
  max_retries: 0,
  retry_if_unreachable: false,
});

connection.onopen = async (session, details) => {
  try {
    const events = [];
    let waiting = null;
    const nextEvent = () => new Promise((resolve) => {
      if (events.length) resolve(events.shift());
      else waiting = resolve;
    });
    await session.subscribe(CHANNEL, (args, kwargs) => {
      const event = { args, kwargs };
      if (waiting) { const resolve = waiting; waiting = null; resolve(event); }
      else events.push(event);
    });
    say('subscribed', { session: session.id, realm: details.realm, protocol: details.transport && details.transport.protocol });
    const pushed = await nextEvent();  // the test pushes now
    say('event', pushed);
    const publication = await session.publish(
      CHANNEL, [{ from: 'node' }], {}, { acknowledge: true, exclude_me: false });
    const own = await nextEvent();
    say('published', { publication: publication.id, own });
    const sum = await session.call('acme/rpc/sum', [2, 3]);
    let callError = null;
    try {
      await session.call('acme/rpc/sum', ['x']);
    } catch (err) {
      callError = errorInfo(err);
    }
    say('called', { sum, callError });
    connection.close();
  } catch (err) {
    fail(err);
  }
};

connection.onclose = (reason, details) => {
  clearTimeout(deadline);
  say('closed', { reason, wamp: details && details.reason });
  process.exit(reason === 'closed' ? 0 : 1);
  return true;
};

connection.open();
