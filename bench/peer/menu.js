'use strict';
/**
 * The MigrantLine demo menu, built the way another team would build it with
 * ussd-menu-builder: one state per screen, links keyed by the digit pressed.
 *
 * Why this exists: the benchmark compares our service with a plausible
 * alternative implementation of the *same* screens, so the peer shows the
 * same English texts and pages the same article at the same screen limit,
 * rather than answering a constant string. The texts are read once at start
 * from content/ (main menu and the "Before you go" section) so they stay in
 * step with what our service serves; per request the peer does only what a
 * hand-written menu does.
 *
 * The library replays the whole `text` path (1*1*3*98...) through the states
 * on every hop, since Africa's Talking sends the full path each time: the
 * same replay work our service does. Unlike ours, the peer keeps no session
 * or per-phone state (nothing is stored), and only English is wired up.
 */
const fs = require('node:fs');
const path = require('node:path');
const yaml = require('js-yaml');
const UssdMenu = require('ussd-menu-builder');

/** Screen limit in GSM-7 characters, the service's default (SPEC.md). */
const SCREEN_LIMIT = 160;
/** The sections of content/nodes the peer serves; other options are stubs. */
const SECTIONS = ['main', 'before_you_go'];
const LANG = 'en';
// Navigation as our service draws it: key and label, all on one line.
const NAV = {
  more: '98 More 0 Back',
  moreTop: '98 More', // a long main menu has nowhere to go back to
  back: '0 Back',
  last: '0 Back 00 Menu',
};

/**
 * Read the site file and every node: all of them name menu options, but
 * only the nodes of SECTIONS become states.
 * @param {string} contentDir
 * @returns {{site: object, nodes: Map<string, object>, served: Set<string>}}
 */
function loadContent(contentDir) {
  const site = yaml.load(fs.readFileSync(path.join(contentDir, 'site.yaml'), 'utf8'));
  const nodes = new Map();
  const served = new Set();
  const nodesDir = path.join(contentDir, 'nodes');
  for (const section of fs.readdirSync(nodesDir).sort()) {
    const dir = path.join(nodesDir, section);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
      const node = yaml.load(fs.readFileSync(path.join(dir, file), 'utf8'));
      nodes.set(node.id, node);
      if (SECTIONS.includes(section)) served.add(node.id);
    }
  }
  return { site, nodes, served };
}

/**
 * @param {object|undefined} text a map from language code to text
 * @returns {string}
 */
function en(text) {
  if (!text) return '';
  return text[LANG] || Object.values(text)[0] || '';
}

/**
 * Paragraphs stay apart; single line breaks inside one are joined (the
 * content format's rule).
 * @param {string} body
 * @returns {string}
 */
function reflow(body) {
  return body
    .trim()
    .split(/\n\s*\n/)
    .map((p) => p.split(/\s+/).join(' '))
    .join('\n');
}

/** @returns {string} the lines that are not empty, one screen */
const screen = (...parts) => parts.filter(Boolean).join('\n');

/** @returns {boolean} whether a screen fits (the limit counts the text after `CON `) */
const fits = (text, limit) => text.length <= limit;

/**
 * Split text into screens of at most `limit` characters counting the title
 * on the first page and the navigation line, cutting at spaces and never
 * inside a word, as the service does with long articles.
 * @param {string} title
 * @param {string} text
 * @param {number} limit
 * @returns {string[]} the full screens, footers included
 */
function paginate(title, text, limit) {
  const words = text.split(/ /).filter(Boolean);
  const pages = [];
  let start = 0;
  while (start < words.length) {
    const head = pages.length === 0 ? title : '';
    const rest = screen(head, words.slice(start).join(' '), NAV.last);
    if (fits(rest, limit)) {
      pages.push(rest);
      break;
    }
    let count = 1;
    while (
      start + count < words.length &&
      fits(screen(head, words.slice(start, start + count + 1).join(' '), NAV.more), limit)
    ) {
      count += 1;
    }
    pages.push(screen(head, words.slice(start, start + count).join(' '), NAV.more));
    start += count;
  }
  return pages;
}

/**
 * Page a menu's option lines: options never split, later pages go on
 * behind 98, like the service's long menus.
 * @param {string} title
 * @param {string[]} lines
 * @param {boolean} back whether the menu offers 0 (every menu but the main one)
 * @param {number} limit
 * @returns {string[]}
 */
function menuPages(title, lines, back, limit) {
  const pages = [];
  let rest = lines;
  while (rest.length) {
    const head = pages.length === 0 ? title : '';
    // On a later page of the main menu, 0 goes back a page.
    const hasBack = back || pages.length > 0;
    const whole = screen(head, ...rest, hasBack ? NAV.back : '');
    if (fits(whole, limit)) {
      pages.push(whole);
      break;
    }
    const more = hasBack ? NAV.more : NAV.moreTop;
    let count = 1;
    while (count < rest.length && fits(screen(head, ...rest.slice(0, count + 1), more), limit)) {
      count += 1;
    }
    pages.push(screen(head, ...rest.slice(0, count), more));
    rest = rest.slice(count);
  }
  return pages;
}

/**
 * The states, built once: names, texts and links. Only the UssdMenu object
 * that runs them is made per request.
 * @param {string} contentDir
 * @returns {{name: string, screen: string, next: object}[]}
 */
function buildStates(contentDir) {
  const { site, nodes, served } = loadContent(contentDir);
  const states = [];
  const globalLinks = { '00': site.main, '99': 'stub' };
  const label = (target) => {
    const node = nodes.get(target);
    return node ? en(node.label) || en(node.title) : target.replace(/_/g, ' ');
  };
  const targetOf = (option) => (typeof option === 'string' ? option : option.target);
  const stateFor = (target) => {
    const node = nodes.get(target);
    if (!node || !served.has(target)) return 'stub';
    if (node.type === 'language') return '__start__';
    return `${target}.0`;
  };

  const languageNext = {};
  site.languages.forEach((_lang, i) => {
    // Every language leads to the English main menu: the benchmark walks
    // English only, and the peer need not carry the translations.
    languageNext[String(i + 1)] = `${site.main}.0`;
  });
  states.push({
    name: '__start__',
    screen: ['Choose language', ...site.languages.map((l, i) => `${i + 1} ${l.name}`)].join('\n'),
    next: languageNext,
  });

  const main = `${site.main}.0`;
  for (const id of served) {
    const node = nodes.get(id);
    let pages;
    const next = { ...globalLinks, '00': main };
    if (node.type === 'menu') {
      const targets = node.options.map(targetOf);
      const lines = targets.map((target, i) => `${i + 1}. ${label(target)}`);
      pages = menuPages(en(node.title), lines, id !== site.main, SCREEN_LIMIT);
      targets.forEach((target, i) => {
        next[String(i + 1)] = stateFor(target);
      });
      if (id !== site.main) next['0'] = main;
    } else if (node.type === 'article') {
      const parent = [...nodes.values()].find(
        (n) => n.type === 'menu' && n.options.some((o) => targetOf(o) === id),
      );
      pages = paginate(en(node.title), reflow(en(node.body)), SCREEN_LIMIT);
      next['0'] = parent && served.has(parent.id) ? `${parent.id}.0` : main;
    } else {
      continue;
    }
    pages.forEach((text, n) => {
      const pageNext = { ...next };
      if (n + 1 < pages.length) pageNext['98'] = `${id}.${n + 1}`;
      // 0 on a later page goes back a page, as in our service.
      if (n > 0) pageNext['0'] = `${id}.${n - 1}`;
      states.push({ name: `${id}.${n}`, screen: text, next: pageNext });
    });
  }
  states.push({
    name: 'stub',
    screen: screen('Coming soon', NAV.last),
    next: { 0: main, '00': main },
  });
  return states;
}

/**
 * Make the per-request menu factory for a content tree.
 *
 * A UssdMenu keeps the current request's args and result callback on the
 * instance, so sharing one between interleaved requests is unsafe; a new
 * one per request is the safe way to use the library. Its states are plain
 * closures over strings computed at start, so that costs little.
 * @param {string} contentDir
 * @returns {() => UssdMenu}
 */
function menuFactory(contentDir) {
  const states = buildStates(contentDir);
  return function buildMenu() {
    const menu = new UssdMenu();
    for (const { name, screen, next } of states) {
      menu.state(name, { run: () => menu.con(screen), next });
    }
    menu.on('error', (err) => {
      // A broken link is a bug in this file; answer END so the gateway is
      // not left waiting, and say so on stderr.
      console.error('menu error:', err.message);
      menu.end('Sorry, something went wrong.');
    });
    return menu;
  };
}

module.exports = { menuFactory, buildStates, paginate, menuPages, reflow };
