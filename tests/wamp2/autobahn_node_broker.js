// autobahn-js (npm `autobahn`): a pattern subscription, a disclosed publisher and the meta API.
// Usage: node --experimental-websocket autobahn_node_broker.js ws://127.0.0.1:PORT/ realm1 json|msgpack
// Prints one JSON line per step.
'use strict';

const path = require('path');
const autobahn = require(path.join(__dirname, '..', 'interop', 'node_modules', 'autobahn'));
const { say, fail } = require('./node_steps.js');

const [url, realm, serializerName] = process.argv.slice(2);
const deadline = setTimeout(() => fail('timeout'), 15000);

function open() {
  const serializer = serializerName === 'msgpack'
    ? new autobahn.serializer.MsgpackSerializer()
    : new autobahn.serializer.JSONSerializer();
  const connection = new autobahn.Connection({
    transports: [{ type: 'websocket', url, serializers: [serializer] }],
    realm,
    max_retries: 0,
    retry_if_unreachable: false,
  });
  return new Promise((resolve) => {
    connection.onopen = (session) => resolve([connection, session]);
    connection.open();
  });
}

async function main() {
  const [watcherConnection, watcher] = await open();
  const [publisherConnection, publisher] = await open();
  let resolveEvent;
  const event = new Promise((resolve) => { resolveEvent = resolve; });
  const subscription = await watcher.subscribe(
    'acme/channel/',
    (args, kwargs, details) => resolveEvent({ args, topic: details.topic, publisher: details.publisher }),
    { match: 'prefix' },
  );
  say('subscribed', { id: subscription.id });
  await publisher.publish('acme/channel/lobby', [{ n: 1 }], {}, { acknowledge: true, disclose_me: true });
  const got = await event;
  say('event', { ...got, publisherSession: publisher.id });
  const matched = await watcher.call('wamp.subscription.match', ['acme/channel/lobby']);
  const listed = await watcher.call('wamp.subscription.list');
  const subscribers = await watcher.call('wamp.subscription.list_subscribers', [subscription.id]);
  say('meta', { matched, listed, subscribers, watcherSession: watcher.id });
  watcherConnection.close();
  publisherConnection.close();
  clearTimeout(deadline);
  say('closed', {});
  setTimeout(() => process.exit(0), 100);
}

main().catch(fail);
