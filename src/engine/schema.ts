import { z } from "zod";

/**
 * The parts of `docker inspect` / `docker ps` JSON we rely on. Docker Engine and Podman's Docker
 * API differ in details (Podman leaves some fields null), so everything optional is nullish and the
 * objects pass through unknown keys.
 */

const portBindings = z
  .record(
    z.string(),
    z.array(z.object({ HostIp: z.string().nullish(), HostPort: z.string().nullish() }).loose()).nullish(),
  )
  .nullish();

export const healthSchema = z
  .object({
    Status: z.string(),
    FailingStreak: z.number().nullish(),
    Log: z
      .array(z.object({ ExitCode: z.number().nullish(), Output: z.string().nullish() }).loose())
      .nullish(),
  })
  .loose();

export const containerInspectSchema = z
  .object({
    Id: z.string(),
    Name: z.string(),
    Image: z.string(),
    Created: z.string().nullish(),
    RestartCount: z.number().nullish(),
    State: z
      .object({
        Status: z.string(),
        Running: z.boolean(),
        Paused: z.boolean().nullish(),
        Restarting: z.boolean().nullish(),
        OOMKilled: z.boolean().nullish(),
        Dead: z.boolean().nullish(),
        Pid: z.number().nullish(),
        ExitCode: z.number().nullish(),
        Error: z.string().nullish(),
        StartedAt: z.string().nullish(),
        FinishedAt: z.string().nullish(),
        // Podman reports health as `Healthcheck` in some versions, Docker as `Health`.
        Health: healthSchema.nullish(),
        Healthcheck: healthSchema.nullish(),
      })
      .loose(),
    Config: z
      .object({
        Image: z.string().nullish(),
        User: z.string().nullish(),
        Env: z.array(z.string()).nullish(),
        Labels: z.record(z.string(), z.string()).nullish(),
      })
      .loose(),
    HostConfig: z
      .object({
        Memory: z.number().nullish(),
        NanoCpus: z.number().nullish(),
        RestartPolicy: z.object({ Name: z.string().nullish() }).loose().nullish(),
        ReadonlyRootfs: z.boolean().nullish(),
        CapAdd: z.array(z.string()).nullish(),
        CapDrop: z.array(z.string()).nullish(),
        SecurityOpt: z.array(z.string()).nullish(),
        PidsLimit: z.number().nullish(),
        Tmpfs: z.record(z.string(), z.string()).nullish(),
        LogConfig: z
          .object({ Type: z.string().nullish(), Config: z.record(z.string(), z.string()).nullish() })
          .loose()
          .nullish(),
      })
      .loose()
      .nullish(),
    NetworkSettings: z.object({ Ports: portBindings }).loose().nullish(),
    /** Host file of the json-file / k8s-file log. */
    LogPath: z.string().nullish(),
  })
  .loose();

export const imageInspectSchema = z
  .object({
    Id: z.string(),
    RepoTags: z.array(z.string()).nullish(),
    RepoDigests: z.array(z.string()).nullish(),
    Created: z.string().nullish(),
    Size: z.number(),
    Architecture: z.string().nullish(),
    Os: z.string().nullish(),
    Config: z
      .object({
        User: z.string().nullish(),
        Env: z.array(z.string()).nullish(),
        Cmd: z.array(z.string()).nullish(),
        Entrypoint: z.array(z.string()).nullish(),
        ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
        Labels: z.record(z.string(), z.string()).nullish(),
        Healthcheck: z
          .object({
            Test: z.array(z.string()).nullish(),
            Interval: z.number().nullish(),
            Timeout: z.number().nullish(),
            StartPeriod: z.number().nullish(),
            Retries: z.number().nullish(),
          })
          .loose()
          .nullish(),
      })
      .loose()
      .nullish(),
  })
  .loose();

/** The part of `docker image inspect` that says which layers an image stacks (parents are a prefix). */
export const imageLayersSchema = z
  .object({
    Id: z.string(),
    RepoTags: z.array(z.string()).nullish(),
    RootFS: z
      .object({ Layers: z.array(z.string()).nullish() })
      .loose()
      .nullish(),
  })
  .loose();

/** One line of `docker ps --format '{{json .}}'`. */
export const containerListEntrySchema = z
  .object({
    ID: z.string(),
    Names: z.union([z.string(), z.array(z.string())]),
    Image: z.string(),
    State: z.string().nullish(),
    Status: z.string().nullish(),
    Labels: z.union([z.string(), z.record(z.string(), z.string())]).nullish(),
  })
  .loose();

export const versionSchema = z
  .object({
    Client: z.object({ Version: z.string() }).loose().nullish(),
    Server: z
      .object({
        Version: z.string(),
        ApiVersion: z.string().nullish(),
        Components: z.array(z.object({ Name: z.string() }).loose()).nullish(),
        Platform: z.object({ Name: z.string().nullish() }).loose().nullish(),
      })
      .loose()
      .nullish(),
  })
  .loose();

export type ContainerInspect = z.infer<typeof containerInspectSchema>;
export type ImageInspect = z.infer<typeof imageInspectSchema>;
export type ContainerListEntry = z.infer<typeof containerListEntrySchema>;
