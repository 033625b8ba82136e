"""MovieLens readers: ml-latest-small (the paper's "ML-100K") and the classic GroupLens ML-100K."""

from __future__ import annotations

import html
from pathlib import Path

from services.core.errors import DatasetFormatError
from services.graph_loader.raw import RawDataset, RawItem, clean_values
from services.graph_loader.readers.files import interactions_frame, read_csv, require_file
from services.graph_loader.schema import standard_schema
from services.graph_loader.titles import clean_movie_title

NO_GENRES = "(no genres listed)"
ML_LABELS = ["Genre", "Year", "Director", "Actor"]


def _movie_item(raw_title: str, genres: list[str], fallback_year: int | None = None) -> RawItem:
    title, year = clean_movie_title(raw_title) if raw_title.strip() else ("", None)
    year = year if year is not None else fallback_year
    attributes = {"Genre": clean_values([g for g in genres if g != NO_GENRES])}
    if year is not None:
        attributes["Year"] = [str(year)]
    return RawItem(title=title or None, attributes=attributes)


class MovieLensLatestReader:
    """ml-latest-small: ratings.csv, movies.csv, optional links.csv and movies_metadata.csv (IMDb)."""

    kind = "ml-latest-small"
    archive_url = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
    required_files = ("ratings.csv", "movies.csv")

    def read(self, raw_dir: Path, *, name: str | None = None) -> RawDataset:
        ratings_path = require_file(raw_dir, "ratings.csv", what="userId,movieId,rating,timestamp")
        movies_path = require_file(raw_dir, "movies.csv", what="movieId,title,genres")
        ratings = read_csv(ratings_path, columns=["userId", "movieId", "rating", "timestamp"])
        movies = read_csv(movies_path, columns=["movieId", "title", "genres"])
        interactions = interactions_frame(
            ratings, path=ratings_path, user="userId", item="movieId", rating="rating", timestamp="timestamp"
        )
        items: dict[str, RawItem] = {}
        for movie_id, title, genres in zip(movies["movieId"], movies["title"], movies["genres"], strict=True):
            items[movie_id.strip()] = _movie_item(title, genres.split("|"))
        sources = [ratings_path, movies_path]
        links_path = Path(raw_dir) / "links.csv"
        if links_path.is_file():
            links = read_csv(links_path, columns=["movieId", "imdbId", "tmdbId"])
            for movie_id, imdb_id, tmdb_id in zip(links["movieId"], links["imdbId"], links["tmdbId"], strict=True):
                item = items.get(movie_id.strip())
                if item is not None:
                    item.properties.update(_link_properties(imdb_id.strip(), tmdb_id.strip()))
            sources.append(links_path)
        labels = ["Genre", "Year"]
        metadata_path = Path(raw_dir) / "movies_metadata.csv"
        if metadata_path.is_file():
            labels = ML_LABELS
            metadata = read_csv(metadata_path, columns=["movieId", "directors", "actors"])
            for movie_id, directors, actors in zip(
                metadata["movieId"], metadata["directors"], metadata["actors"], strict=True
            ):
                item = items.get(movie_id.strip())
                if item is not None:
                    item.attributes["Director"] = _names(directors)
                    item.attributes["Actor"] = _names(actors)
            sources.append(metadata_path)
        return RawDataset(
            name=name or self.kind,
            kind=self.kind,
            interactions=interactions,
            items=items,
            schema=standard_schema(labels),
            sources=sources,
        )


def _names(joined: str) -> list[str]:
    """`|`-separated IMDb names with HTML entities such as `&apos;` decoded."""
    return clean_values([html.unescape(name) for name in joined.split("|")])


def _link_properties(imdb_id: str, tmdb_id: str) -> dict[str, str]:
    properties = {}
    if imdb_id:
        properties["imdb_id"] = f"tt{imdb_id.zfill(7)}"
    if tmdb_id:
        properties["tmdb_id"] = tmdb_id
    return properties


class MovieLens100KReader:
    """Classic GroupLens ML-100K: u.data (tab-separated), u.item (latin-1, 19 genre flags), u.genre."""

    kind = "ml-100k"
    archive_url = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    required_files = ("u.data", "u.item", "u.genre")

    def read(self, raw_dir: Path, *, name: str | None = None) -> RawDataset:
        data_path = require_file(raw_dir, "u.data", what="tab-separated user item rating timestamp")
        item_path = require_file(raw_dir, "u.item", what="pipe-separated movie metadata (latin-1)")
        genre_path = require_file(raw_dir, "u.genre", what="pipe-separated genre|index lines")
        columns = ["user", "item", "rating", "timestamp"]
        ratings = read_csv(data_path, columns=columns, header=False, names=columns, sep="\t")
        interactions = interactions_frame(
            ratings, path=data_path, user="user", item="item", rating="rating", timestamp="timestamp"
        )
        genres = self._genres(genre_path)
        item_columns = ["movie_id", "title", "release_date", "video_release_date", "imdb_url", *genres]
        movies = read_csv(
            item_path, columns=item_columns, header=False, names=item_columns, sep="|", encoding="latin-1"
        )
        items: dict[str, RawItem] = {}
        for row in movies.itertuples(index=False):
            flags = row[5:]
            if any(flag not in ("0", "1") for flag in flags):
                raise DatasetFormatError(
                    f"{item_path}: genre flags must be 0 or 1, movie {row.movie_id!r} has {list(flags)}",
                    path=str(item_path),
                )
            chosen = [genre for genre, flag in zip(genres, flags, strict=True) if flag == "1"]
            item = _movie_item(row.title, chosen, fallback_year=_release_year(row.release_date))
            if row.imdb_url.strip():
                item.properties["imdb_url"] = row.imdb_url.strip()
            items[row.movie_id.strip()] = item
        return RawDataset(
            name=name or self.kind,
            kind=self.kind,
            interactions=interactions,
            items=items,
            schema=standard_schema(["Genre", "Year"]),
            sources=[data_path, item_path, genre_path],
        )

    @staticmethod
    def _genres(path: Path) -> list[str]:
        frame = read_csv(path, columns=["genre", "index"], header=False, names=["genre", "index"], sep="|")
        try:
            ordered = sorted(zip(frame["index"].astype(int), frame["genre"], strict=True))
        except ValueError as e:
            raise DatasetFormatError(f"{path}: genre indexes must be integers", path=str(path)) from e
        if [index for index, _ in ordered] != list(range(len(ordered))):
            raise DatasetFormatError(f"{path}: genre indexes must be 0..n-1", path=str(path))
        return [genre for _, genre in ordered]


def _release_year(release_date: str) -> int | None:
    """u.item dates look like "01-Jan-1995"."""
    tail = release_date.strip()[-4:]
    return int(tail) if tail.isdigit() else None
