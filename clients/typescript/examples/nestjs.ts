/**
 * A NestJS service reading flagops flags through OpenFeature (@openfeature/nestjs-sdk).
 *
 *   FLAGOPS_BASE_URL=https://objects.example.eu/flags FLAGOPS_ENVIRONMENT=production \
 *     node build/examples/nestjs.js
 *
 * The tenant comes from the `x-tenant` header (its slug is the OpenFeature targetingKey);
 * GET /mail answers which mail backend that tenant is on.
 */
import "reflect-metadata";

import { Controller, Get, Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { BooleanFeatureFlag, OpenFeatureModule } from "@openfeature/nestjs-sdk";
import type { EvaluationDetails } from "@openfeature/server-sdk";
import { type Observable, firstValueFrom } from "rxjs";

import { FlagopsProvider } from "@dezky/flagops-client/openfeature";

@Controller()
class MailController {
  @Get("mail")
  async mail(@BooleanFeatureFlag({ flagKey: "jmap_native_v2", defaultValue: false }) jmap: Observable<EvaluationDetails<boolean>>) {
    const flag = await firstValueFrom(jmap);
    return { backend: flag.value ? "jmap" : "imap", reason: flag.reason };
  }
}

@Module({
  imports: [
    OpenFeatureModule.forRoot({
      defaultProvider: new FlagopsProvider({
        baseUrl: process.env.FLAGOPS_BASE_URL ?? "file:///var/lib/flagops",
        environment: process.env.FLAGOPS_ENVIRONMENT ?? "production",
        cacheDir: process.env.FLAGOPS_CACHE_DIR,
      }),
      contextFactory: (context) => {
        const tenant = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers["x-tenant"];
        return tenant ? { targetingKey: tenant } : undefined;
      },
    }),
  ],
  controllers: [MailController],
})
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: ["error", "warn"] });
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1");
console.log(`listening on ${await app.getUrl()}`);
