'use strict';
/**
 * Benchmark peer: the demo USSD menu served by Express under Node's cluster
 * module, with as many worker processes as our service gets.
 *
 * Why cluster: one Node process uses one core for JavaScript; our service
 * runs N worker processes under granian, so the peer gets N processes too and
 * the comparison is per machine, not one core against two.
 *
 *   node server.js --host 127.0.0.1 --port 8080 --workers 2 [--content DIR]
 *   (or HOST, PORT, WORKERS, CONTENT_DIR in the environment; the content
 *   tree defaults to the repository's content/)
 */
const cluster = require('node:cluster');
const path = require('node:path');
const process = require('node:process');

/**
 * Read `--name value` / `--name=value` from argv, then the environment.
 * @param {string} name
 * @param {string} envName
 * @param {string} fallback
 * @returns {string}
 */
function option(name, envName, fallback) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}` && i + 1 < argv.length) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return process.env[envName] || fallback;
}

const HOST = option('host', 'HOST', '127.0.0.1');
const PORT = Number(option('port', 'PORT', '8080'));
const WORKERS = Number(option('workers', 'WORKERS', '2'));
const CONTENT_DIR = option('content', 'CONTENT_DIR', path.resolve(__dirname, '..', '..', 'content'));

if (!Number.isInteger(PORT) || PORT <= 0 || !Number.isInteger(WORKERS) || WORKERS < 1) {
  console.error('usage: node server.js --port P --workers N [--host H] [--content DIR]');
  process.exit(2);
}

if (cluster.isPrimary) {
  // Load the content once here too, so a broken tree fails before forking.
  require('./menu').buildStates(CONTENT_DIR);
  let stopping = false;
  let exitCode = 0;
  let online = 0;
  for (let i = 0; i < WORKERS; i++) cluster.fork();

  cluster.on('listening', () => {
    online += 1;
    if (online === WORKERS) {
      console.log(`peer: ${WORKERS} workers listening on http://${HOST}:${PORT}`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      // A benchmark must not quietly continue with fewer workers than it
      // claims: fail loudly instead of re-forking.
      console.error(`peer: worker ${worker.process.pid} died (${signal || code}); stopping`);
      shutdown(1);
    } else if (Object.keys(cluster.workers).length === 0) {
      process.exit(exitCode);
    }
  });

  /**
   * Stop the workers, then the primary, so no orphan keeps the port.
   * @param {number} code
   */
  function shutdown(code) {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    setTimeout(() => process.exit(code), 5000).unref();
    if (Object.keys(cluster.workers).length === 0) process.exit(code);
  }
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
} else {
  const express = require('express');
  const buildMenu = require('./menu').menuFactory(CONTENT_DIR);

  const app = express();
  app.use(express.urlencoded({ extended: false }));

  app.post('/ussd/africastalking', async (req, res) => {
    const body = req.body || {};
    const args = {
      phoneNumber: body.phoneNumber,
      sessionId: body.sessionId,
      serviceCode: body.serviceCode,
      networkCode: body.networkCode,
      text: body.text || '',
    };
    const reply = await buildMenu().run(args);
    res.type('text/plain').send(reply);
  });

  const server = app.listen(PORT, HOST);
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
