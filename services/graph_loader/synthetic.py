"""A small synthetic movie catalogue written in the exact ml-latest-small file format.

Used when no real data is at hand (the demo says so loudly) and by tests as a fixture generator.
Users prefer a few genres and rate movies of those genres more often and higher, so relation
paths and rankings carry a real (if simple) signal. Everything derives from one seed.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_WORDS = (
    "Midnight",
    "River",
    "Shadow",
    "Garden",
    "Iron",
    "Silent",
    "Golden",
    "Winter",
    "Last",
    "Secret",
    "Broken",
    "Crimson",
    "Distant",
    "Electric",
    "Hidden",
    "Lonely",
    "Paper",
    "Velvet",
    "Wild",
    "Glass",
)
_FIRST = ("Ana", "Ben", "Chloé", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea", "Max", "Noor")
_LAST = ("Abe", "Brook", "Cruz", "Dunn", "O'Hara", "Frey", "Gale", "Hart", "Ito", "Jansen", "Kerr", "Lund")


@dataclass
class SyntheticMovie:
    movie_id: int
    title: str
    year: int
    genres: list[str]
    director: str
    actors: list[str]


@dataclass
class SyntheticCatalogue:
    movies: list[SyntheticMovie]
    ratings: list[tuple[int, int, float, int]] = field(default_factory=list)  # user, movie, rating, ts


def generate(
    *, users: int = 60, movies: int = 120, ratings_per_user: tuple[int, int] = (8, 40), seed: int = 7
) -> SyntheticCatalogue:
    rng = random.Random(seed)
    directors = [f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for _ in range(max(3, movies // 6))]
    actors = sorted({f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for _ in range(max(8, movies // 2))})
    catalogue = SyntheticCatalogue(movies=[])
    for movie_id in range(1, movies + 1):
        words = rng.sample(_WORDS, 2)
        title = f"{words[0]} {words[1]}"
        if movie_id % 7 == 0:
            title = f"{title}, The"  # MovieLens moves leading articles to the end
        if movie_id % 11 == 0:
            title = f"{title} (Le {words[1]})"  # an alternative title that cleaning drops
        catalogue.movies.append(
            SyntheticMovie(
                movie_id=movie_id * 3,  # sparse raw ids, as in MovieLens
                title=title,
                year=rng.randint(1960, 2018),
                genres=rng.sample(GENRES, rng.randint(1, 3)),
                director=rng.choice(directors),
                actors=rng.sample(actors, 3),
            )
        )
    by_genre: dict[str, list[SyntheticMovie]] = {}
    for movie in catalogue.movies:
        for genre in movie.genres:
            by_genre.setdefault(genre, []).append(movie)
    for user in range(1, users + 1):
        liked = rng.sample(GENRES, 3)
        pool = [m for g in liked for m in by_genre.get(g, [])]
        count = rng.randint(*ratings_per_user)
        chosen: dict[int, SyntheticMovie] = {}
        while len(chosen) < min(count, len(catalogue.movies)):
            movie = rng.choice(pool) if pool and rng.random() < 0.75 else rng.choice(catalogue.movies)
            chosen[movie.movie_id] = movie
        ts = 1_000_000_000 + rng.randint(0, 10**8)
        for movie in chosen.values():
            ts += rng.choice((0, 0, 1, 60, 3600))  # equal timestamps happen in MovieLens too
            fond = any(g in liked for g in movie.genres)
            rating = rng.choice((3.5, 4.0, 4.5, 5.0) if fond else (0.5, 1.5, 2.0, 3.0, 3.5))
            catalogue.ratings.append((user, movie.movie_id, rating, ts))
    return catalogue


def write_ml_latest_small(catalogue: SyntheticCatalogue, out: Path) -> Path:
    """ratings.csv, movies.csv, links.csv and movies_metadata.csv as GroupLens + IMDb ship them."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "ratings.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["userId", "movieId", "rating", "timestamp"])
        for user, movie, rating, ts in catalogue.ratings:
            writer.writerow([user, movie, f"{rating:.1f}", ts])
    with (out / "movies.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["movieId", "title", "genres"])
        for movie in catalogue.movies:
            writer.writerow([movie.movie_id, f"{movie.title} ({movie.year})", "|".join(movie.genres)])
    with (out / "links.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["movieId", "imdbId", "tmdbId"])
        for movie in catalogue.movies:
            writer.writerow([movie.movie_id, f"{movie.movie_id + 100000:07d}", movie.movie_id + 500])
    with (out / "movies_metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["", "movieId", "directors", "actors"])
        for row, movie in enumerate(catalogue.movies):
            names = "|".join(actor.replace("'", "&apos;") for actor in movie.actors)
            writer.writerow([row, movie.movie_id, movie.director.replace("'", "&apos;"), names])
    return out
