// Paging a first/after connection from its newest end.
//
// The API pages oldest first, with `first`/`after` only. To show the newest
// items first, the console walks the connection once asking for nothing but
// the edges' cursors (200 a page), which gives it every item's position.
// Page p (0 = newest) then covers positions [start, end) counted from the
// oldest, and is fetched whole with `first: end - start, after: cursor[start - 1]`
// and shown reversed. Anything added after the walk shows after a refresh.

export const WALK_SIZE = 200;

export class NewestFirst {
  /**
   * cursors(after) -> { edges: [{cursor}], pageInfo: {hasNextPage, endCursor} }
   * page(first, after) -> [{cursor, node}] (oldest first, as the API answers)
   */
  constructor({ cursors, page, pageSize }) {
    this.fetchCursors = cursors;
    this.fetchPage = page;
    this.pageSize = pageSize;
    this.cursors = null;
  }

  async index() {
    const all = [];
    let after = null;
    for (;;) {
      const { edges, pageInfo } = await this.fetchCursors(after);
      for (const edge of edges) all.push(edge.cursor);
      if (!pageInfo.hasNextPage || !pageInfo.endCursor || !edges.length) break;
      after = pageInfo.endCursor;
    }
    this.cursors = all;
    return all.length;
  }

  get total() {
    return this.cursors ? this.cursors.length : 0;
  }

  get pageCount() {
    return Math.max(1, Math.ceil(this.total / this.pageSize));
  }

  /** Page p, newest first: { nodes, first, last } (1-based positions from the newest). */
  async load(p, retried = false) {
    if (this.cursors === null) await this.index();
    const total = this.total;
    const page = Math.min(Math.max(0, p), this.pageCount - 1);
    const end = total - page * this.pageSize;
    const start = Math.max(0, end - this.pageSize);
    if (end <= 0) return { page, nodes: [], first: 0, last: 0 };
    const edges = await this.fetchPage(end - start, start > 0 ? this.cursors[start - 1] : null);
    const expected = this.cursors.slice(start, end);
    const same = edges.length === expected.length && edges.every((edge, i) => edge.cursor === expected[i]);
    if (!same && !retried) {
      // The list changed under us (a status filter, say): walk it again.
      await this.index();
      return this.load(p, true);
    }
    return {
      page,
      nodes: edges.map((edge) => edge.node).reverse(),
      first: page * this.pageSize + 1,
      last: page * this.pageSize + edges.length,
    };
  }
}
