"""All SQL the desktop reviewer needs: identity id lists, rows by id, faces of an identity,
face details with flags and partner faces, duplicate groups, identity search, progress counts.

The GUI's identity list holds only an id array (one query) and fetches rows lazily by id
(:func:`identity_rows`), so 100,000 identities scroll without loading them all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from annotator.model import origin_of
from annotator.store import identity_check as ic_store
from annotator.store.db import Project, chunks
from annotator.store.names import NAME_TOP, name_match_sql

FILTERS: tuple[str, ...] = ("unreviewed", "flagged", "reviewed", "all")
# Sort keys understood by identity_ids; "suspicion" is the default review order.
SORTS: tuple[str, ...] = ("suspicion", "key", "name", "faces", "flags", "state")

# Flag kind -> badge letter drawn on the tile.
BADGES: dict[str, str] = {
    "exact_dup": "D",
    "near_dup": "D",
    "cross_identity_dup": "X",
    "outlier": "O",
    "corrupt": "!",
    "tiny": "Q",
    "grayscale": "Q",
    "blurry": "Q",
    "suspect_identity": "S",
}
BADGE_ORDER = "DXSO!Q"

# Display name: English first, else the alphabetically first language.
_NAME = (
    "(SELECT n.name FROM identity_names n WHERE n.identity_id = i.id"
    " ORDER BY n.lang != 'en', n.lang LIMIT 1)"
)


# -- identities ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityRow:
    id: int
    key: str
    name: str | None
    face_count: int
    labeled_count: int
    flagged_count: int
    suspicion: float
    reviewed: bool

    @property
    def state(self) -> str:
        if self.reviewed:
            return "reviewed"
        if self.labeled_count:
            return f"{self.labeled_count}/{self.face_count}"
        return ""


def identity_ids(
    project: Project,
    filter: str = "unreviewed",
    search: str = "",
    sort: str = "suspicion",
    descending: bool = False,
) -> list[int]:
    """Ids of the identities matching ``filter`` and ``search``, in display order.

    ``search`` matches a key prefix or, word by word, prefixes of the words of any name
    (case- and accent-insensitive; see :func:`annotator.store.names.name_match_sql`). The default order
    ("suspicion") is unreviewed first, most suspicious first.
    """
    where: list[str] = []
    args: list[object] = []
    if filter == "unreviewed":
        where.append("i.reviewed = 0")
    elif filter == "reviewed":
        where.append("i.reviewed = 1")
    elif filter == "flagged":
        where.append("i.flagged_count > 0")
    elif filter != "all":
        raise ValueError(f"unknown filter {filter!r}")
    match, match_args = name_match_sql(search)
    if match:
        where.append(f"i.id IN ({match})")
        args += match_args
    d = "DESC" if descending else "ASC"
    order = {
        # covered by the identities_suspicion index (ties keep id order): ~100k ids in <0.1 s
        "suspicion": f"i.reviewed {d}, i.suspicion DESC",
        "key": f"i.key {d}",
        "name": f"coalesce({_NAME}, i.key) {d}, i.id",
        "faces": f"i.face_count {d}, i.id",
        "flags": f"i.flagged_count {d}, i.suspicion {d}, i.id",
        "state": f"i.reviewed {d}, i.labeled_count {d}, i.id",
    }.get(sort)
    if order is None:
        raise ValueError(f"unknown sort {sort!r}")
    sql = "SELECT i.id FROM identities i"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY " + order
    return [r[0] for r in project.conn.execute(sql, args)]


def identity_rows(project: Project, ids: Sequence[int]) -> dict[int, IdentityRow]:
    """Rows of the given identities (missing ids are absent)."""
    out: dict[int, IdentityRow] = {}
    for chunk in chunks(list(ids)):
        q = ",".join("?" * len(chunk))
        for r in project.conn.execute(
            f"SELECT i.id, i.key, {_NAME}, i.face_count, i.labeled_count, i.flagged_count,"
            f" i.suspicion, i.reviewed FROM identities i WHERE i.id IN ({q})",
            list(chunk),
        ):
            out[r[0]] = IdentityRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))
    return out


def identity_by_key(project: Project, key: str) -> int | None:
    row = project.conn.execute("SELECT id FROM identities WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def search_identities(project: Project, text: str, limit: int = 50) -> list[IdentityRow]:
    """Identities whose key starts with ``text`` or whose names match its words (see
    :func:`annotator.store.names.name_match_sql`): exact key first, then key prefixes, then by key."""
    text = text.strip()
    match, args = name_match_sql(text)
    if not match:
        return []
    ids = [
        r[0]
        for r in project.conn.execute(
            f"SELECT i.id FROM identities i WHERE i.id IN ({match})"
            " ORDER BY i.key = ? DESC, (i.key >= ? AND i.key < ?) DESC, i.key LIMIT ?",
            [*args, text, text, text + NAME_TOP, limit],
        )
    ]
    rows = identity_rows(project, ids)
    return [rows[i] for i in ids if i in rows]


def unreviewed_ids(project: Project) -> set[int]:
    """Ids of every identity not reviewed yet (one query on the covering identities_suspicion
    index; the reviewer's next-to-review looks them up in its list order)."""
    return {r[0] for r in project.conn.execute("SELECT id FROM identities WHERE reviewed = 0")}


def never_scanned(project: Project) -> bool:
    """True when the project has faces and none of them has been hashed (no scan yet)."""
    r = project.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM faces) AND NOT EXISTS (SELECT 1 FROM face_hashes)"
    ).fetchone()
    return bool(r[0])


def review_progress(project: Project) -> tuple[int, int]:
    """(identities reviewed, identities in total)."""
    r = project.conn.execute(
        "SELECT coalesce(sum(reviewed), 0), count(*) FROM identities"
    ).fetchone()
    return int(r[0]), int(r[1])


# -- faces -----------------------------------------------------------------------------------


@dataclass(slots=True)
class FaceTile:
    """What the face grid needs for one tile, plus a plain locator for the thumbnail worker."""

    id: int
    identity_id: int
    label: str | None
    badges: str  # e.g. "DX"
    source_path: str
    fmt: str
    offset: int | None
    length: int | None
    relpath: str | None
    record: int | None

    @property
    def origin(self) -> str:
        return origin_of(Path(self.source_path).name, self.fmt, self.record, self.relpath)

    def locator(self) -> tuple[int, str, str, int | None, int | None, str | None, str]:
        """A plain tuple (face id, source path, format, offset, length, relpath, origin)."""
        return (
            self.id,
            self.source_path,
            self.fmt,
            self.offset,
            self.length,
            self.relpath,
            self.origin,
        )


def _badges(kinds: str | None) -> str:
    if not kinds:
        return ""
    letters = {BADGES.get(k, "") for k in kinds.split(",")}
    return "".join(b for b in BADGE_ORDER if b in letters)


_TILE_SQL = (
    "SELECT f.id, f.identity_id, f.label,"
    " (SELECT group_concat(DISTINCT fl.kind) FROM flag_faces ff JOIN flags fl ON fl.id = ff.flag_id"
    "  WHERE ff.face_id = f.id),"
    " s.path, s.format, f.offset, f.length, f.relpath, f.record"
    " FROM faces f JOIN sources s ON s.id = f.source_id"
)


def _tile(r: sqlite3.Row | tuple) -> FaceTile:
    return FaceTile(r[0], r[1], r[2], _badges(r[3]), r[4], r[5], r[6], r[7], r[8], r[9])


def faces_of_identity(project: Project, identity_id: int) -> list[FaceTile]:
    """The faces currently filed under an identity, in import order."""
    return [
        _tile(r)
        for r in project.conn.execute(
            _TILE_SQL + " WHERE f.identity_id = ? ORDER BY f.id", (identity_id,)
        )
    ]


def face_tiles(project: Project, face_ids: Sequence[int]) -> dict[int, FaceTile]:
    out: dict[int, FaceTile] = {}
    for chunk in chunks(list(face_ids)):
        q = ",".join("?" * len(chunk))
        for r in project.conn.execute(_TILE_SQL + f" WHERE f.id IN ({q})", list(chunk)):
            out[r[0]] = _tile(r)
    return out


@dataclass
class Partner:
    face_id: int
    identity_id: int
    identity_key: str
    label: str | None
    tile: FaceTile | None = None
    # filled by dup_group only: the scan's keeper, the image size (from the scan's
    # hashes) and the search rank, so the reviewer can judge the proposal
    keeper: bool = False
    size: tuple[int, int] | None = None
    rank: int | None = None
    kinds: frozenset[str] = frozenset()  # the face's flag kinds (dup_group only)


@dataclass
class FlagInfo:
    kind: str
    score: float
    distance: int | None
    partners: list[Partner] = field(default_factory=list)
    looks_like: str | None = None  # suspect_identity: the key of the identity it looks like


@dataclass
class FaceDetail:
    tile: FaceTile
    identity_key: str
    rank: int | None
    image_url: str | None
    page_url: str | None
    face_ref: str | None
    rect: tuple[float, float, float, float] | None
    phash: str | None = None  # 16 hex digits
    dhash: str | None = None
    size: tuple[int, int] | None = None
    sharpness: float | None = None
    corrupt: str | None = None
    flags: list[FlagInfo] = field(default_factory=list)
    dup_group: int | None = None
    # identities that are probably the same person as this face's (kind "same_person",
    # looks_like = the other key, score = centre distance, partners = a few of its faces)
    same_person: list[FlagInfo] = field(default_factory=list)


def _hex64(v: int | None) -> str | None:
    return None if v is None else f"{v & 0xFFFFFFFFFFFFFFFF:016x}"


def face_detail(project: Project, face_id: int) -> FaceDetail | None:
    """Everything the inspector shows about one face (None when it does not exist)."""
    c = project.conn
    tiles = face_tiles(project, [face_id])
    if face_id not in tiles:
        return None
    r = c.execute(
        "SELECT i.key, f.rank, f.image_url, f.page_url, f.face_ref,"
        " f.rect_x0, f.rect_y0, f.rect_x1, f.rect_y1"
        " FROM faces f JOIN identities i ON i.id = f.identity_id WHERE f.id = ?",
        (face_id,),
    ).fetchone()
    rect = None if r[5] is None else (r[5], r[6], r[7], r[8])
    d = FaceDetail(tiles[face_id], r[0], r[1], r[2], r[3], r[4], rect)
    h = c.execute(
        "SELECT phash, dhash, width, height, sharpness, corrupt FROM face_hashes WHERE face_id = ?",
        (face_id,),
    ).fetchone()
    if h:
        d.phash, d.dhash = _hex64(h[0]), _hex64(h[1])
        d.size = None if h[2] is None else (h[2], h[3])
        d.sharpness, d.corrupt = h[4], h[5]
    g = c.execute("SELECT group_id FROM dup_groups WHERE face_id = ?", (face_id,)).fetchone()
    d.dup_group = None if g is None else g[0]
    partner_ids: list[int] = []
    for fid, kind, score, dist in c.execute(
        "SELECT fl.id, fl.kind, fl.score, fl.distance FROM flag_faces ff"
        " JOIN flags fl ON fl.id = ff.flag_id WHERE ff.face_id = ? ORDER BY fl.score DESC",
        (face_id,),
    ).fetchall():
        info = FlagInfo(kind, score, dist)
        if kind == "suspect_identity":
            # partners: a few faces of the identity it looks like; a stranger (it looks like
            # no one in the set): a few of its own identity's faces, to compare with
            like = ic_store.looks_like(project, face_id)
            if like is not None:
                name = identity_rows(project, [like[0]]).get(like[0])
                info.looks_like = like[1] + (f" — {name.name}" if name and name.name else "")
                # its nearest faces there first: what the reviewer compares it with
                ident, key = like[0], like[1]
                sample = ic_store.sample_faces(project, ident, near=face_id)
            else:
                ident, key = d.tile.identity_id, d.identity_key
                sample = [f for f in ic_store.sample_faces(project, ident, 7) if f != face_id]
            label = dict(
                c.execute(
                    f"SELECT id, label FROM faces WHERE id IN ({','.join('?' * len(sample))})",
                    sample,
                ).fetchall()
            )
            for pf in [f for f in sample if f in label][:6]:
                info.partners.append(Partner(pf, ident, key, label[pf]))
                partner_ids.append(pf)
        for pf, pi, pk, pl in c.execute(
            "SELECT f.id, f.identity_id, i.key, f.label FROM flag_faces ff"
            " JOIN faces f ON f.id = ff.face_id JOIN identities i ON i.id = f.identity_id"
            " WHERE ff.flag_id = ? AND ff.face_id != ? ORDER BY f.id LIMIT 8",
            (fid, face_id),
        ):
            info.partners.append(Partner(pf, pi, pk, pl))
            partner_ids.append(pf)
        d.flags.append(info)
    for other, key, dist in ic_store.same_person_of(project, d.tile.identity_id):
        info = FlagInfo("same_person", dist, None, looks_like=key)
        for pf in ic_store.sample_faces(project, other, 4):
            info.partners.append(Partner(pf, other, key, None))
            partner_ids.append(pf)
        d.same_person.append(info)
    ptiles = face_tiles(project, partner_ids)
    for info in d.flags + d.same_person:
        for p in info.partners:
            p.tile = ptiles.get(p.face_id)
    return d


def _group_member_ids(project: Project, face_id: int) -> tuple[list[int], int | None]:
    """The face's duplicate group (scan's keeper first) and the scan's keeper; without a
    stored group, the face and its exact/near/cross duplicate partners, no keeper."""
    c = project.conn
    g = c.execute("SELECT group_id FROM dup_groups WHERE face_id = ?", (face_id,)).fetchone()
    if g is not None:
        marked = [
            (r[0], bool(r[1]))
            for r in c.execute(
                "SELECT face_id, is_keeper FROM dup_groups WHERE group_id = ?"
                " ORDER BY is_keeper DESC, face_id",
                (g[0],),
            )
        ]
        ids = [f for f, _k in marked]
        keeper = next((f for f, k in marked if k), None)
    else:
        ids = [face_id] + [
            r[0]
            for r in c.execute(
                "SELECT DISTINCT ff2.face_id FROM flag_faces ff JOIN flags fl ON fl.id = ff.flag_id"
                " JOIN flag_faces ff2 ON ff2.flag_id = fl.id"
                " WHERE ff.face_id = ? AND ff2.face_id != ?"
                " AND fl.kind IN ('exact_dup', 'near_dup', 'cross_identity_dup') ORDER BY 1",
                (face_id, face_id),
            )
        ]
        keeper = None
    return ids, keeper


def dup_group(project: Project, face_id: int) -> list[Partner]:
    """The duplicate group of a face (itself included), the scan's stored keeper marked.

    From dup_groups (the scan's keeper first); when the scan left no group, the face and its
    exact/near duplicate partners, none marked (the keeper rule is core's:
    :func:`annotator.core.review.keeper.with_scan_keeper`). Fewer than 2 faces means no group.
    Each member carries its image size (None before a scan) and rank."""
    ids, keeper = _group_member_ids(project, face_id)
    c = project.conn
    q = ",".join("?" * len(ids))
    facts = {
        r[0]: ((r[1], r[2]) if r[1] is not None and r[2] is not None else None, r[3])
        for r in c.execute(
            "SELECT f.id, h.width, h.height, f.rank FROM faces f"
            f" LEFT JOIN face_hashes h ON h.face_id = f.id WHERE f.id IN ({q})",
            ids,
        )
    }
    tiles = face_tiles(project, ids)
    kinds: dict[int, set[str]] = {}
    for f, k in c.execute(
        "SELECT ff.face_id, fl.kind FROM flag_faces ff JOIN flags fl ON fl.id = ff.flag_id"
        f" WHERE ff.face_id IN ({q})",
        ids,
    ):
        kinds.setdefault(f, set()).add(k)
    idents = sorted({t.identity_id for t in tiles.values()})
    keys = (
        dict(
            c.execute(
                f"SELECT id, key FROM identities WHERE id IN ({','.join('?' * len(idents))})",
                idents,
            )
        )
        if idents
        else {}
    )
    return [
        Partner(
            f,
            tiles[f].identity_id,
            keys.get(tiles[f].identity_id, "?"),
            tiles[f].label,
            tiles[f],
            keeper=f == keeper,
            size=facts.get(f, (None, None))[0],
            rank=facts.get(f, (None, None))[1],
            kinds=frozenset(kinds.get(f, ())),
        )
        for f in ids
        if f in tiles
    ]


# -- one flag kind across identities (the flag grid) ------------------------------------------


def flag_kind_counts(project: Project) -> dict[str, tuple[int, int]]:
    """flag kind -> (faces flagged with it, of those still unlabeled), kinds by name."""
    return {
        str(k): (int(n), int(u))
        for k, n, u in project.conn.execute(
            "SELECT fl.kind, count(DISTINCT ff.face_id),"
            " count(DISTINCT CASE WHEN f.label IS NULL THEN ff.face_id END)"
            " FROM flags fl JOIN flag_faces ff ON ff.flag_id = fl.id"
            " JOIN faces f ON f.id = ff.face_id GROUP BY fl.kind ORDER BY fl.kind"
        )
    }


def flag_kind_faces(project: Project, kind: str) -> list[tuple[int, float]]:
    """(face id, score) of every face flagged ``kind``, in every identity: the highest score
    of its flags of that kind first, then by face id."""
    return [
        (int(f), float(s))
        for f, s in project.conn.execute(
            "SELECT ff.face_id, max(fl.score) AS s FROM flags fl"
            " JOIN flag_faces ff ON ff.flag_id = fl.id WHERE fl.kind = ?"
            " GROUP BY ff.face_id ORDER BY s DESC, ff.face_id",
            (kind,),
        )
    ]


def suggested_target(project: Project, face_ids: Sequence[int]) -> tuple[int, str] | None:
    """The identity the tool names for faces to be moved — the one the embeddings say they
    look more like, else the one a cross-identity copy of them is filed under — with why; the
    identity most of the faces point to (None when none does)."""
    votes: dict[int, list[str]] = {}
    for chunk in chunks(list(face_ids)):
        q = ",".join("?" * len(chunk))
        for ident, why in project.conn.execute(
            f"SELECT l.identity_id, 'looks like' FROM face_looks_like l WHERE l.face_id IN ({q})"
            " UNION ALL"
            " SELECT DISTINCT f2.identity_id, 'a copy is filed there' FROM flag_faces ff"
            " JOIN flags fl ON fl.id = ff.flag_id AND fl.kind = 'cross_identity_dup'"
            " JOIN flag_faces ff2 ON ff2.flag_id = fl.id AND ff2.face_id != ff.face_id"
            " JOIN faces f ON f.id = ff.face_id JOIN faces f2 ON f2.id = ff2.face_id"
            f" WHERE ff.face_id IN ({q}) AND f2.identity_id != f.identity_id",
            [*chunk, *chunk],
        ):
            votes.setdefault(int(ident), []).append(str(why))
    if not votes:
        return None
    best = max(votes, key=lambda i: (len(votes[i]), "looks like" in votes[i], -i))
    return best, " and ".join(sorted(set(votes[best])))
